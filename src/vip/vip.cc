#include <string>

#include "vip/vip_types.h"

namespace hafront::vip {

const char* to_string(VipState s) {
  switch (s) {
    case VipState::Released: return "released";
    case VipState::Acquiring: return "acquiring";
    case VipState::Held: return "held";
    case VipState::Releasing: return "releasing";
  }
  return "?";
}

const char* to_string(EventKind k) {
  switch (k) {
    case EventKind::Want: return "want";
    case EventKind::Unwant: return "unwant";
    case EventKind::ProbeClear: return "probe-clear";
    case EventKind::ProbeConflict: return "probe-conflict";
    case EventKind::AddressAdded: return "address-added";
    case EventKind::AddressAddFailed: return "address-add-failed";
    case EventKind::AddressDeleted: return "address-deleted";
    case EventKind::AddressDeleteFailed: return "address-delete-failed";
    case EventKind::LinkDown: return "link-down";
    case EventKind::LinkUp: return "link-up";
    case EventKind::TimerFired: return "timer";
  }
  return "?";
}

namespace {
const char* timer_name(TimerKind k) { return k == TimerKind::Refresh ? "refresh" : "retry"; }
template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;
}  // namespace

std::string describe(const Action& a) {
  return std::visit(
      Overloaded{
          [](const ProbeForConflict& p) { return "probe " + std::to_string(p.wait.count()) + "ms"; },
          [](const AddAddress&) { return std::string("add-address"); },
          [](const DeleteAddress&) { return std::string("delete-address"); },
          [](const Announce& n) {
            return "announce " + std::to_string(n.count) + "x" + std::to_string(n.interval.count()) + "ms";
          },
          [](const StartTimer& t) {
            return std::string("start-timer ") + timer_name(t.kind) + " " + std::to_string(t.after.count()) + "ms";
          },
          [](const CancelTimer& t) { return std::string("cancel-timer ") + timer_name(t.kind); },
          [](const CloseConnections&) { return std::string("close-connections"); },
          [](const RaiseAlert& r) { return "alert: " + r.message; },
          [](const ReportServable& r) {
            return std::string(r.servable ? "servable" : "unservable") + (r.reason.empty() ? "" : ": " + r.reason);
          },
      },
      a);
}

}  // namespace hafront::vip
