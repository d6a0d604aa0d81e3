// Holds and releases this node's VIPs: one state machine per VIP (vip_machine.h), its
// actions carried out through NetOps, kernel notifications turned into events. Runs on the
// control loop; every call comes from it.
//
// Who should hold a VIP is decided elsewhere (standalone: every VIP; the cluster part:
// the plan) and arrives through set_wanted(). What the manager reports back: each VIP's
// state, whether this node can serve it (interface up, address usable), and alerts.
#pragma once

#include <boost/asio.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config_types.h"
#include "vip/lease_ops.h"
#include "vip/net_ops.h"
#include "vip/vip_machine.h"

namespace hafront::vip {

struct VipView {
  std::string name;
  std::string address;  // CIDR
  std::string interface;
  std::string driver;  // the driver in effect: "lease" or "address"
  std::string driver_note;  // why auto chose the address driver, or why lease cannot work
  std::optional<uint64_t> lease_expiry_ns;  // lease driver, while the gate has the VIP
  VipState state = VipState::Released;
  bool servable = false;   // this node could hold it: interface present and up, family usable
  std::string reason;      // why the VIP is in its state / not servable
};

class VipManager {
 public:
  struct Callbacks {
    std::function<void(const std::string& message)> alert;
    std::function<void(const std::string& vip, bool servable, const std::string& reason)> servable_changed;
    // Called with every state change, for logs and waiters (tests, the cluster part).
    std::function<void(const std::string& vip, VipState state)> state_changed;
  };

  // `lease` is the lease driver's kernel side; nullptr (with `lease_error` saying why) when
  // BPF is unavailable: `auto` VIPs then use the address driver and `lease` VIPs cannot be
  // held.
  VipManager(boost::asio::io_context& io, NetOps& net, Callbacks callbacks, LeaseOps* lease = nullptr,
             std::string lease_error = "");
  ~VipManager();

  // Start-up, before any VIP is held: removes every hafront-marked address (left by a
  // crashed or killed daemon), and starts watching the kernel. Returns the removed ones.
  std::vector<MarkedAddress> start();

  // The VIP set, at start and on reload. A removed VIP, or one whose address or interface
  // changed, is released at once (connections closed, address deleted); other changes
  // (GARP settings, preference) apply in place.
  void configure(const std::vector<config::Vip>& vips);

  // The decision for one VIP.
  void set_wanted(const std::string& name, bool want);

  // Releases every VIP now (graceful stop), synchronously: addresses deleted, sockets
  // destroyed.
  void release_all();

  // The lease driver: the lease of every leased VIP this node holds now runs until
  // `expiry_ns` (CLOCK_BOOTTIME); 0 expires them now. New acquisitions start with it.
  void set_lease(uint64_t expiry_ns);
  bool leased(const std::string& name) const;

  std::vector<VipView> view() const;

 private:
  struct Entry;
  void feed(Entry& e, const Event& ev);
  void execute(Entry& e, const Action& a);
  void resolve_link(Entry& e);
  void announce(Entry& e, uint32_t rounds_left, Duration interval);
  Entry* find_by_address(int ifindex, const config::Address& address);
  void on_address(int ifindex, const config::Address& address, bool added, bool ours);
  void on_link(const LinkInfo& link);
  void resync();
  void set_servable(Entry& e, bool servable, const std::string& reason);
  void drop(Entry& e);
  void choose_driver(Entry& e);
  std::string gate_armed(Entry& e);  // the gate on the uplink, the VIP gated (silent until renewed)
  int address_ifindex(const Entry& e) const;

  boost::asio::io_context& io_;
  NetOps& net_;
  Callbacks cb_;
  LeaseOps* lease_;
  std::string lease_error_;
  uint64_t lease_until_ = 0;
  std::optional<LinkInfo> lo_;
  std::map<std::string, std::unique_ptr<Entry>> entries_;
};

}  // namespace hafront::vip
