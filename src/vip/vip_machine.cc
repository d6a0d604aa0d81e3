#include "vip/vip_machine.h"

namespace hafront::vip {
namespace {

struct Stepper {
  MachineState s;
  const config::Vip& vip;
  Clock::time_point now;
  std::vector<Action> out;

  void go(VipState state, Pending pending, std::string reason) {
    if (state != s.state) s.since = now;
    s.state = state;
    s.pending = pending;
    s.reason = std::move(reason);
  }

  // Start taking the address: probe first unless the probe is switched off.
  void acquire() {
    if (vip.probe.count() > 0) {
      go(VipState::Acquiring, Pending::Probe, "checking that no one else answers for the address");
      out.push_back(ProbeForConflict{vip.probe});
    } else {
      add();
    }
  }
  void add() {
    go(VipState::Acquiring, Pending::Add, "adding the address");
    out.push_back(AddAddress{});
  }
  void release(std::string reason) {
    out.push_back(CancelTimer{TimerKind::Refresh});
    out.push_back(CloseConnections{});
    out.push_back(DeleteAddress{});
    go(VipState::Releasing, Pending::Delete, std::move(reason));
  }
  void retry_later(std::string reason) {
    go(VipState::Released, Pending::Retry, std::move(reason));
    out.push_back(StartTimer{TimerKind::Retry, kRetryInterval});
  }
  void held() {
    go(VipState::Held, Pending::None, "");
    out.push_back(Announce{vip.garp.count, vip.garp.interval});
    if (vip.garp.refresh.count() > 0) out.push_back(StartTimer{TimerKind::Refresh, vip.garp.refresh});
  }
  // After the address is gone: acquire again if still wanted, else rest.
  void settle_released(std::string reason) {
    if (s.want && s.link_up) {
      acquire();
    } else {
      go(VipState::Released, Pending::None, std::move(reason));
    }
  }

  void on(const Event& e) {
    switch (e.kind) {
      case EventKind::Want:
        if (s.want) return;
        s.want = true;
        if (s.state == VipState::Released) {
          if (!s.link_up) {
            s.reason = "wanted, but the interface is down";
          } else if (s.pending != Pending::Retry) {
            acquire();
          }
        }
        // Releasing: settle_released() acquires again once the delete is done.
        return;

      case EventKind::Unwant:
        if (!s.want) return;
        s.want = false;
        switch (s.state) {
          case VipState::Released:
            if (s.pending == Pending::Retry) out.push_back(CancelTimer{TimerKind::Retry});
            go(VipState::Released, Pending::None, "not wanted on this node");
            return;
          case VipState::Acquiring:
            if (s.pending == Pending::Probe) {
              go(VipState::Released, Pending::None, "not wanted on this node");
            } else {
              release("releasing: not wanted on this node");  // the add may have happened
            }
            return;
          case VipState::Held:
            release("releasing: not wanted on this node");
            return;
          case VipState::Releasing:
            return;
        }
        return;

      case EventKind::ProbeClear:
        if (s.state == VipState::Acquiring && s.pending == Pending::Probe) add();
        return;

      case EventKind::ProbeConflict:
        if (s.state != VipState::Acquiring || s.pending != Pending::Probe) return;
        out.push_back(RaiseAlert{"VIP " + vip.name + " (" + vip.address.address.str() + ") is already answered for by " +
                                 e.detail + " on " + vip.interface + "; not taking it"});
        out.push_back(ReportServable{false, "address in use by " + e.detail});
        retry_later("address in use by " + e.detail + "; probing again");
        return;

      case EventKind::AddressAdded:
        if (s.state == VipState::Acquiring && s.pending == Pending::Add) {
          out.push_back(ReportServable{true, ""});
          held();
        }
        return;

      case EventKind::AddressAddFailed:
        if (s.state != VipState::Acquiring || s.pending != Pending::Add) return;
        out.push_back(RaiseAlert{"cannot add VIP " + vip.name + " (" + vip.address.str() + ") to " + vip.interface +
                                 ": " + e.detail});
        out.push_back(ReportServable{false, e.detail});
        retry_later("cannot add the address: " + e.detail);
        return;

      case EventKind::AddressDeleted:
        if (s.state == VipState::Releasing) {
          settle_released(s.link_up ? "released" : "released: the interface is down");
        } else if (s.state == VipState::Held) {
          out.push_back(CancelTimer{TimerKind::Refresh});
          out.push_back(RaiseAlert{"VIP " + vip.name + " (" + vip.address.str() + ") was removed from " +
                                   vip.interface + " by someone else; adding it back"});
          add();
        }
        return;

      case EventKind::AddressDeleteFailed:
        if (s.state != VipState::Releasing) return;
        out.push_back(RaiseAlert{"cannot remove VIP " + vip.name + " (" + vip.address.str() + ") from " +
                                 vip.interface + ": " + e.detail + "; retrying"});
        out.push_back(StartTimer{TimerKind::Retry, kRetryInterval});
        s.reason = "cannot remove the address: " + e.detail;
        return;

      case EventKind::LinkDown:
        if (!s.link_up) return;
        s.link_up = false;
        out.push_back(ReportServable{false, "interface " + vip.interface + " is down"});
        if (s.state == VipState::Held || (s.state == VipState::Acquiring && s.pending == Pending::Add)) {
          release("releasing: the interface is down");
        } else if (s.state == VipState::Acquiring || s.state == VipState::Released) {
          if (s.pending == Pending::Retry) out.push_back(CancelTimer{TimerKind::Retry});
          go(VipState::Released, Pending::None, "the interface is down");
        }
        return;

      case EventKind::LinkUp:
        if (s.link_up) return;
        s.link_up = true;
        out.push_back(ReportServable{true, ""});
        if (s.state == VipState::Released && s.want) acquire();
        return;

      case EventKind::TimerFired:
        if (e.timer == TimerKind::Refresh && s.state == VipState::Held) {
          out.push_back(Announce{1, Duration{0}});
          out.push_back(StartTimer{TimerKind::Refresh, vip.garp.refresh});
        } else if (e.timer == TimerKind::Retry) {
          if (s.state == VipState::Released && s.pending == Pending::Retry) {
            if (s.want && s.link_up) {
              acquire();
            } else {
              go(VipState::Released, Pending::None, s.want ? "the interface is down" : "not wanted on this node");
            }
          } else if (s.state == VipState::Releasing) {
            out.push_back(DeleteAddress{});
          }
        }
        return;
    }
  }
};

}  // namespace

StepResult step(const MachineState& state, const Event& event, const config::Vip& vip, Clock::time_point now) {
  Stepper st{state, vip, now, {}};
  st.on(event);
  return {st.s, std::move(st.out)};
}

}  // namespace hafront::vip
