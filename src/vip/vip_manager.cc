#include "vip/vip_manager.h"

#include <spdlog/spdlog.h>

namespace hafront::vip {

namespace asio = boost::asio;

namespace {
// With the lease driver the address lives on lo as a host address: a /24 there would
// route the whole subnet to this node.
config::Cidr host_cidr(const config::Cidr& c) {
  config::Cidr h = c;
  h.prefix = c.address.is_v6() ? 128 : 32;
  return h;
}
}  // namespace

struct VipManager::Entry {
  explicit Entry(asio::io_context& io) : refresh(io), retry(io), announce(io) {}
  config::Vip vip;
  MachineState m;
  std::optional<LinkInfo> link;  // nullopt while the interface is missing
  bool servable = false;
  std::string servable_reason;
  asio::steady_timer refresh, retry, announce;
  // The lease driver.
  bool leased = false;        // the driver in effect
  std::string driver_note;    // why auto fell back to address
  std::string lease_problem;  // why the lease driver cannot hold it now ("" if it can)
  bool gated = false;         // the address is on lo; the gate follows the node's lease
};

VipManager::VipManager(asio::io_context& io, NetOps& net, Callbacks callbacks, LeaseOps* lease,
                       std::string lease_error)
    : io_(io), net_(net), cb_(std::move(callbacks)), lease_(lease), lease_error_(std::move(lease_error)) {}

VipManager::~VipManager() = default;

std::vector<MarkedAddress> VipManager::start() {
  std::string error;
  std::vector<MarkedAddress> stale = net_.marked_addresses(error);
  if (!error.empty()) spdlog::error("cannot look for stale VIP addresses: {}", error);
  for (const auto& a : stale) {
    if (std::string err = net_.delete_address(a.ifindex, a.cidr); !err.empty()) {
      spdlog::error("cannot remove stale VIP address {} from {}: {}", a.cidr.str(), a.ifname, err);
    } else {
      spdlog::warn("removed stale VIP address {} from {}, left by a previous run", a.cidr.str(), a.ifname);
    }
  }
  std::string lo_error;
  lo_ = net_.link("lo", lo_error);
  if (!lo_) spdlog::error("no loopback interface ({}): the lease driver cannot hold any VIP", lo_error);
  NetWatcher w;
  w.address = [this](int ifindex, const config::Address& a, bool added, bool ours) { on_address(ifindex, a, added, ours); };
  w.link = [this](const LinkInfo& l) { on_link(l); };
  w.resync = [this] { resync(); };
  net_.watch(std::move(w));
  return stale;
}

void VipManager::configure(const std::vector<config::Vip>& vips) {
  // Removed, or moved to another address/interface: release the old one first.
  for (auto it = entries_.begin(); it != entries_.end();) {
    auto match = std::find_if(vips.begin(), vips.end(), [&](const config::Vip& v) { return v.name == it->first; });
    bool moved = match != vips.end() &&
                 (match->address != it->second->vip.address || match->interface != it->second->vip.interface ||
                  match->driver != it->second->vip.driver);
    if (match == vips.end() || moved) {
      drop(*it->second);
      if (it->second->leased && lease_) lease_->forget(it->second->vip.address.address);
      it = entries_.erase(it);
    } else {
      it->second->vip = *match;  // in-place changes: GARP settings, probe, preference
      ++it;
    }
  }
  for (const config::Vip& v : vips) {
    if (entries_.count(v.name)) continue;
    auto e = std::make_unique<Entry>(io_);
    e->vip = v;
    e->m.reason = "not wanted on this node";
    Entry& ref = *e;
    entries_.emplace(v.name, std::move(e));
    choose_driver(ref);
    resolve_link(ref);
  }
}

void VipManager::choose_driver(Entry& e) {
  const bool v6 = e.vip.address.address.is_v6();
  std::string problem;
  if (!lease_) {
    problem = "the lease driver is unavailable (" + (lease_error_.empty() ? std::string("no BPF") : lease_error_) + ")";
  } else if (!lo_) {
    problem = "the lease driver needs the loopback interface";
  } else {
    problem = lease_->check_uplink(e.vip.interface, v6);
  }
  switch (e.vip.driver) {
    case config::VipDriver::Address:
      e.leased = false;
      break;
    case config::VipDriver::Lease:
      // Never fall back silently: an operator who asked for the lease's guarantee gets it
      // or gets nothing, and the cluster does not assign this VIP to this node.
      e.leased = true;
      e.lease_problem = problem;
      break;
    case config::VipDriver::Auto:
      e.leased = problem.empty();
      e.driver_note = problem;
      if (!problem.empty()) spdlog::warn("VIP {}: driver auto uses the address driver: {}", e.vip.name, problem);
      break;
  }
}

int VipManager::address_ifindex(const Entry& e) const {
  if (e.leased) return lo_ ? lo_->ifindex : 0;
  return e.link ? e.link->ifindex : 0;
}

std::string VipManager::gate_armed(Entry& e) {
  if (!lease_ || !e.link) return "the lease gate is unavailable";
  if (std::string err = lease_->attach(e.link->ifindex); !err.empty()) return err;
  return lease_->set(e.vip.address.address, e.link->mac, e.gated ? lease_until_ : 0);
}

void VipManager::resolve_link(Entry& e) {
  std::string error;
  e.link = net_.link(e.vip.interface, error);
  if (e.link && e.leased) {
    // Gated from the start: a gate left by a killed run is replaced, and the VIP is silent
    // until this node holds it. The sysctls are checked again: they may have been fixed.
    if (e.vip.driver == config::VipDriver::Lease && lease_ && lo_) {
      e.lease_problem = lease_->check_uplink(e.vip.interface, e.vip.address.address.is_v6());
    }
    if (e.lease_problem.empty()) {
      if (std::string err = gate_armed(e); !err.empty()) e.lease_problem = err;
    }
  }
  if (e.link && e.vip.address.address.is_v6() && e.link->ipv6_disabled) {
    error = "IPv6 is disabled on " + e.vip.interface;
    e.link.reset();
  }
  if (!e.link) {
    // The machine treats it as a link that is down; the specific reason is set after it.
    feed(e, Event{EventKind::LinkDown, error});
    set_servable(e, false, error);
    return;
  }
  feed(e, Event{e.link->up ? EventKind::LinkUp : EventKind::LinkDown, ""});
  set_servable(e, e.link->up, e.link->up ? "" : "interface " + e.vip.interface + " is down");
}

void VipManager::set_wanted(const std::string& name, bool want) {
  auto it = entries_.find(name);
  if (it == entries_.end()) return;
  Entry& e = *it->second;
  // A lease VIP this node cannot gate is never taken (and never reported servable).
  if (want && e.leased && !e.lease_problem.empty()) return;
  feed(e, Event{want ? EventKind::Want : EventKind::Unwant, ""});
}

void VipManager::feed(Entry& e, const Event& ev) {
  VipState before = e.m.state;
  StepResult r = step(e.m, ev, e.vip, Clock::now());
  e.m = r.state;
  if (e.m.state != before) {
    spdlog::info("VIP {} ({} on {}): {} -> {}{}", e.vip.name, e.vip.address.str(), e.vip.interface, to_string(before),
                 to_string(e.m.state), e.m.reason.empty() ? "" : " (" + e.m.reason + ")");
    if (cb_.state_changed) cb_.state_changed(e.vip.name, e.m.state);
  }
  for (const Action& a : r.actions) execute(e, a);
}

void VipManager::execute(Entry& e, const Action& action) {
  const std::string name = e.vip.name;
  // Results come back as events posted to the loop, never fed re-entrantly.
  auto post_event = [this, name](Event ev) {
    asio::post(io_, [this, name, ev] {
      if (auto it = entries_.find(name); it != entries_.end()) feed(*it->second, ev);
    });
  };
  if (const auto* p = std::get_if<ProbeForConflict>(&action)) {
    if (!e.link || e.link->noarp) {  // nothing to ask on loopback
      post_event(Event{EventKind::ProbeClear, ""});
      return;
    }
    net_.probe(*e.link, e.vip.address.address, p->wait, [post_event](std::optional<Mac> who, std::string error) {
      if (!error.empty()) spdlog::warn("conflict probe failed ({}); taking the address anyway", error);
      post_event(who ? Event{EventKind::ProbeConflict, "MAC " + to_string(*who)} : Event{EventKind::ProbeClear, ""});
    });
  } else if (std::holds_alternative<AddAddress>(action)) {
    if (!e.link) return post_event(Event{EventKind::AddressAddFailed, "interface " + e.vip.interface + " is missing"});
    std::string err;
    if (e.leased) {
      // The gate first, with this node's lease; then the address on lo, which the kernel
      // never answers ARP for.
      e.gated = true;
      err = e.lease_problem.empty() ? gate_armed(e) : e.lease_problem;
      if (err.empty()) err = lo_ ? net_.add_address(lo_->ifindex, host_cidr(e.vip.address)) : "no loopback interface";
      if (!err.empty()) {
        e.gated = false;
        if (lease_) lease_->expire(e.vip.address.address);
      }
    } else {
      err = net_.add_address(e.link->ifindex, e.vip.address);
    }
    post_event(err.empty() ? Event{EventKind::AddressAdded, ""} : Event{EventKind::AddressAddFailed, err});
  } else if (std::holds_alternative<DeleteAddress>(action)) {
    std::string err;
    if (e.leased) {
      // Silent at once, then the address goes.
      e.gated = false;
      if (lease_) lease_->expire(e.vip.address.address);
      if (lo_) err = net_.delete_address(lo_->ifindex, host_cidr(e.vip.address));
    } else if (e.link) {
      err = net_.delete_address(e.link->ifindex, e.vip.address);
    }
    if (!err.empty()) spdlog::error("VIP {}: cannot remove {} from {}: {}", name, e.vip.address.str(), e.vip.interface, err);
    post_event(err.empty() ? Event{EventKind::AddressDeleted, ""} : Event{EventKind::AddressDeleteFailed, err});
  } else if (const auto* n = std::get_if<Announce>(&action)) {
    announce(e, n->count, n->interval);
  } else if (const auto* t = std::get_if<StartTimer>(&action)) {
    asio::steady_timer& timer = t->kind == TimerKind::Refresh ? e.refresh : e.retry;
    timer.expires_after(t->after);
    TimerKind kind = t->kind;
    timer.async_wait([this, name, kind](boost::system::error_code ec) {
      if (ec) return;
      if (auto it = entries_.find(name); it != entries_.end()) feed(*it->second, Event{EventKind::TimerFired, "", kind});
    });
  } else if (const auto* c = std::get_if<CancelTimer>(&action)) {
    (c->kind == TimerKind::Refresh ? e.refresh : e.retry).cancel();
  } else if (std::holds_alternative<CloseConnections>(action)) {
    std::string error;
    size_t closed = net_.destroy_sockets(e.vip.address.address, error);
    if (!error.empty()) spdlog::warn("VIP {}: closing connections: {}", name, error);
    if (closed) spdlog::info("VIP {}: closed {} connection(s) on release", name, closed);
  } else if (const auto* a = std::get_if<RaiseAlert>(&action)) {
    spdlog::error("{}", a->message);
    if (cb_.alert) cb_.alert(a->message);
  } else if (const auto* s = std::get_if<ReportServable>(&action)) {
    set_servable(e, s->servable, s->reason);
  }
}

void VipManager::announce(Entry& e, uint32_t rounds_left, Duration interval) {
  if (rounds_left == 0 || e.m.state != VipState::Held || !e.link || e.link->noarp) return;
  const config::Address& a = e.vip.address.address;
  std::vector<Frame> frames = a.is_v6() ? std::vector<Frame>{unsolicited_na(e.link->mac, a)}
                                        : std::vector<Frame>{garp_request(e.link->mac, a), garp_reply(e.link->mac, a)};
  if (std::string err = net_.send_frames(e.link->ifindex, frames); !err.empty()) {
    spdlog::warn("VIP {}: announcing: {}", e.vip.name, err);
  }
  if (rounds_left <= 1) return;
  e.announce.expires_after(interval);
  std::string name = e.vip.name;
  e.announce.async_wait([this, name, rounds_left, interval](boost::system::error_code ec) {
    if (ec) return;
    if (auto it = entries_.find(name); it != entries_.end()) announce(*it->second, rounds_left - 1, interval);
  });
}

VipManager::Entry* VipManager::find_by_address(int ifindex, const config::Address& address) {
  for (auto& [name, e] : entries_) {
    if ((e->link || e->leased) && address_ifindex(*e) == ifindex && e->vip.address.address == address) return e.get();
  }
  return nullptr;
}

void VipManager::on_address(int ifindex, const config::Address& address, bool added, bool ours) {
  Entry* e = find_by_address(ifindex, address);
  if (!e || (added && !ours)) return;
  feed(*e, Event{added ? EventKind::AddressAdded : EventKind::AddressDeleted, ""});
}

void VipManager::on_link(const LinkInfo& link) {
  for (auto& [name, e] : entries_) {
    bool same = e->link ? e->link->ifindex == link.ifindex : e->vip.interface == link.name;
    if (!same) continue;
    if (!e->link) {
      if (!link.deleted) resolve_link(*e);  // the interface appeared
      continue;
    }
    if (link.deleted) {
      // The address went with the interface: forget the index (a new interface of that
      // name gets another), release, and wait for it to come back.
      std::string why = "interface " + e->vip.interface + " was removed";
      e->link.reset();
      feed(*e, Event{EventKind::LinkDown, why});
      set_servable(*e, false, why);
      continue;
    }
    if (link.up != e->link->up) {
      e->link->up = link.up;
      e->link->mac = link.mac;
      if (link.up) set_servable(*e, true, "");
      feed(*e, Event{link.up ? EventKind::LinkUp : EventKind::LinkDown, ""});
    }
  }
}

void VipManager::resync() {
  spdlog::warn("netlink notifications were lost; re-reading interfaces and addresses");
  std::string error;
  auto marked = net_.marked_addresses(error);
  for (auto& [name, e] : entries_) {
    bool present = std::any_of(marked.begin(), marked.end(), [&](const MarkedAddress& m) {
      return (e->link || e->leased) && m.ifindex == address_ifindex(*e) && m.cidr.address == e->vip.address.address;
    });
    if (e->m.state == VipState::Held && !present) feed(*e, Event{EventKind::AddressDeleted, ""});
    resolve_link(*e);
  }
}

void VipManager::set_servable(Entry& e, bool servable, const std::string& given_reason) {
  std::string reason = given_reason;
  if (e.leased && !e.lease_problem.empty()) {
    servable = false;
    reason = e.lease_problem;
  }
  if (e.servable == servable && e.servable_reason == reason) return;
  e.servable = servable;
  e.servable_reason = reason;
  if (cb_.servable_changed) cb_.servable_changed(e.vip.name, servable, reason);
}

void VipManager::drop(Entry& e) {
  e.refresh.cancel();
  e.retry.cancel();
  e.announce.cancel();
  // The machine's own release actions, carried out now whatever the machine was waiting
  // for (the result events find the VIP released, or gone).
  if (e.m.state != VipState::Released) {
    execute(e, CloseConnections{});
    execute(e, DeleteAddress{});
  }
  e.m.state = VipState::Released;
  if (cb_.state_changed) cb_.state_changed(e.vip.name, VipState::Released);
}

void VipManager::set_lease(uint64_t expiry_ns) {
  lease_until_ = expiry_ns;
  if (!lease_) return;
  for (auto& [name, e] : entries_) {
    if (!e->leased || !e->gated || !e->link) continue;
    if (expiry_ns == 0) {
      lease_->expire(e->vip.address.address);
    } else if (std::string err = lease_->set(e->vip.address.address, e->link->mac, expiry_ns); !err.empty()) {
      spdlog::error("VIP {}: cannot renew its lease: {}", name, err);
    }
  }
}

bool VipManager::leased(const std::string& name) const {
  auto it = entries_.find(name);
  return it != entries_.end() && it->second->leased;
}

void VipManager::release_all() {
  for (auto& [name, e] : entries_) {
    e->m.want = false;
    drop(*e);
    e->m.reason = "released: stopping";
  }
}

std::vector<VipView> VipManager::view() const {
  std::vector<VipView> out;
  for (const auto& [name, e] : entries_) {
    VipView v;
    v.name = name;
    v.address = e->vip.address.str();
    v.interface = e->vip.interface;
    v.driver = e->leased ? "lease" : "address";
    v.driver_note = e->leased ? e->lease_problem : e->driver_note;
    if (e->leased && e->gated) v.lease_expiry_ns = lease_until_;
    v.state = e->m.state;
    v.servable = e->servable;
    // A VIP this node cannot serve says why (missing interface, address in use, ...).
    bool blocked = !e->servable && e->m.state == VipState::Released && !e->servable_reason.empty();
    v.reason = blocked || e->m.reason.empty() ? e->servable_reason : e->m.reason;
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace hafront::vip
