// What the lease driver needs from the kernel, behind one narrow interface: the BPF lease
// gate (lease_gate.h) and the checks that nothing else answers for a VIP. The real
// implementation is make_linux_lease_ops(); unit tests use a recording fake.
//
// With the lease driver a VIP's address lives on `lo` as a host address (/32, /128): the
// kernel accepts its traffic, but with arp_ignore >= 1 and arp_announce = 2 on the uplink
// it never answers ARP for it and never uses it as the source of its own ARP; IPv6 is
// answered only for addresses on the receiving interface. So the gate on the uplink is
// the only thing that answers for the VIP, and only while its lease is valid.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "config/config_types.h"

namespace hafront::vip {

class LeaseOps {
 public:
  using Mac = std::array<uint8_t, 6>;
  virtual ~LeaseOps() = default;

  // "" if the kernel cannot answer for a VIP of this family on `uplink` by itself;
  // otherwise what is wrong, naming the sysctl to set.
  virtual std::string check_uplink(const std::string& uplink, bool v6) = 0;
  // Puts the gate on the uplink's ingress (idempotent; replaces a gate left by a killed run).
  virtual std::string attach(int ifindex) = 0;
  // The VIP is answered (with `mac`) until expiry_ns (CLOCK_BOOTTIME); 0 or the past: gated
  // and silent, its traffic dropped.
  virtual std::string set(const config::Address& vip, const Mac& mac, uint64_t expiry_ns) = 0;
  virtual void expire(const config::Address& vip) = 0;
  // No longer gated at all: only once its address is gone and it is no longer configured.
  virtual void forget(const config::Address& vip) = 0;
  virtual uint64_t now_ns() = 0;  // CLOCK_BOOTTIME
};

// The real thing: loads bpf/lease.bpf.c. nullptr with `error` set when BPF is unavailable.
std::unique_ptr<LeaseOps> make_linux_lease_ops(std::string& error);

}  // namespace hafront::vip
