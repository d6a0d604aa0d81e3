// The kernel side of the lease driver: loads bpf/lease.bpf.c (a libbpf skeleton built by
// CMake), attaches it as a tc clsact ingress filter on the uplinks, and writes each VIP's
// lease expiry (CLOCK_BOOTTIME) into its map. While a VIP's lease is valid the program
// answers ARP / neighbour solicitations for it and lets its traffic in; after expiry it
// answers nothing and drops the traffic -- with no daemon running.
//
// RAII: destroying the gate detaches only the filters it attached (never the whole clsact
// qdisc, which other tools may use) and frees the program. A daemon that is killed leaves
// its filters attached on purpose: they keep enforcing the last expiry.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config_types.h"

struct lease_bpf;

namespace hafront::vip {

using Mac = std::array<uint8_t, 6>;

class LeaseGate {
 public:
  // Loads the program (needs CAP_BPF/CAP_NET_ADMIN). nullptr with `error` set otherwise.
  static std::unique_ptr<LeaseGate> load(std::string& error);
  ~LeaseGate();
  LeaseGate(const LeaseGate&) = delete;
  LeaseGate& operator=(const LeaseGate&) = delete;

  // Attaches the gate to an interface's ingress (idempotent).
  bool attach(int ifindex, std::string& error);
  void detach(int ifindex);

  // Sets a VIP's lease: answered (with `mac` as the source) until `expiry_ns`, in
  // CLOCK_BOOTTIME. expire() makes it run out now; forget() removes the entry (the VIP
  // is then no longer gated at all: only for VIPs this node no longer configures).
  bool set(const config::Address& vip, const Mac& mac, uint64_t expiry_ns, std::string& error);
  bool expire(const config::Address& vip);
  bool forget(const config::Address& vip);
  std::optional<uint64_t> expiry(const config::Address& vip) const;

  // Counters summed over CPUs, indexed by hafront_lease_stat.
  std::vector<uint64_t> stats() const;

  // For tests (BPF_PROG_TEST_RUN) and diagnostics.
  int program_fd() const;
  void set_now_override(uint64_t ns);  // 0: the real clock

  static uint64_t boot_now_ns();

 private:
  LeaseGate() = default;
  lease_bpf* skel_ = nullptr;
  std::vector<int> attached_;  // ifindexes
};

}  // namespace hafront::vip
