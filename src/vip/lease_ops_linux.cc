#include <algorithm>
#include <fstream>

#include "vip/lease_gate.h"
#include "vip/lease_ops.h"

namespace hafront::vip {
namespace {

// A sysctl of the current network namespace, or -1 when it cannot be read.
int read_sysctl(const std::string& path) {
  std::ifstream in("/proc/sys/net/" + path);
  int value = -1;
  if (!(in >> value)) return -1;
  return value;
}

class LinuxLeaseOps final : public LeaseOps {
 public:
  explicit LinuxLeaseOps(std::unique_ptr<LeaseGate> gate) : gate_(std::move(gate)) {}

  std::string check_uplink(const std::string& uplink, bool v6) override {
    if (v6) {
      int proxy = read_sysctl("ipv6/conf/" + uplink + "/proxy_ndp");
      if (proxy > 0) return "net.ipv6.conf." + uplink + ".proxy_ndp is on: the kernel could answer for the VIP; set it to 0";
      return {};
    }
    // The kernel uses the higher of "all" and the interface's value for both.
    int ignore_all = read_sysctl("ipv4/conf/all/arp_ignore");
    int ignore_if = read_sysctl("ipv4/conf/" + uplink + "/arp_ignore");
    int announce_all = read_sysctl("ipv4/conf/all/arp_announce");
    int announce_if = read_sysctl("ipv4/conf/" + uplink + "/arp_announce");
    if (ignore_if < 0 || announce_if < 0) return "cannot read the ARP sysctls of " + uplink;
    int ignore = std::max(ignore_all, ignore_if);
    if (ignore != 1 && ignore != 2 && ignore != 8) {
      return "the kernel answers ARP for addresses on lo: set net.ipv4.conf." + uplink +
             ".arp_ignore=1 (now " + std::to_string(ignore) + ")";
    }
    if (std::max(announce_all, announce_if) != 2) {
      return "the kernel may use the VIP as the source of its own ARP: set net.ipv4.conf." + uplink +
             ".arp_announce=2 (now " + std::to_string(std::max(announce_all, announce_if)) + ")";
    }
    return {};
  }

  std::string attach(int ifindex) override {
    std::string error;
    gate_->attach(ifindex, error);
    return error;
  }

  std::string set(const config::Address& vip, const Mac& mac, uint64_t expiry_ns) override {
    std::string error;
    gate_->set(vip, mac, expiry_ns, error);
    return error;
  }

  void expire(const config::Address& vip) override { gate_->expire(vip); }
  void forget(const config::Address& vip) override { gate_->forget(vip); }
  uint64_t now_ns() override { return LeaseGate::boot_now_ns(); }

 private:
  std::unique_ptr<LeaseGate> gate_;
};

}  // namespace

std::unique_ptr<LeaseOps> make_linux_lease_ops(std::string& error) {
  auto gate = LeaseGate::load(error);
  if (!gate) return nullptr;
  return std::make_unique<LinuxLeaseOps>(std::move(gate));
}

}  // namespace hafront::vip
