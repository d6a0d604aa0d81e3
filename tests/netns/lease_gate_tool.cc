// A test driver for the lease gate on a real interface (tests/netns/lease_gate_wire.py):
// loads the program, attaches it to an interface, and renews the VIPs' lease every
// --renew-ms for --lease-ms, printing "ready" once the first lease is written and one line
// per renewal ("renewed EXPIRY_NS"). Stopping it (SIGSTOP) or killing it (SIGKILL) stops the
// renewals, as a paused or crashed daemon would; SIGTERM detaches and exits.
#include <net/if.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "config/units.h"
#include "vip/lease_gate.h"

namespace {
volatile sig_atomic_t g_stop = 0;
void on_term(int) { g_stop = 1; }
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"lease gate test driver"};
  std::string ifname, mac_text;
  std::vector<std::string> vip_texts;
  int lease_ms = 500, renew_ms = 100;
  app.add_option("--dev", ifname, "interface")->required();
  app.add_option("--vip", vip_texts, "VIP address (repeat for several)")->required();
  app.add_option("--mac", mac_text, "source MAC of the answers, aa:bb:cc:dd:ee:ff")->required();
  app.add_option("--lease-ms", lease_ms, "lease length");
  app.add_option("--renew-ms", renew_ms, "renewal interval");
  CLI11_PARSE(app, argc, argv);

  std::vector<hafront::config::Address> vips;
  for (const auto& t : vip_texts) {
    auto a = hafront::config::parse_address(t);
    if (!a) {
      std::fprintf(stderr, "bad --vip %s\n", t.c_str());
      return 2;
    }
    vips.push_back(*a);
  }
  hafront::vip::Mac mac{};
  unsigned m[6];
  if (std::sscanf(mac_text.c_str(), "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6) {
    std::fprintf(stderr, "bad --mac\n");
    return 2;
  }
  for (int i = 0; i < 6; ++i) mac[static_cast<size_t>(i)] = static_cast<uint8_t>(m[i]);
  int ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
  if (ifindex == 0) {
    std::fprintf(stderr, "no interface %s\n", ifname.c_str());
    return 2;
  }
  std::string error;
  auto gate = hafront::vip::LeaseGate::load(error);
  if (!gate || !gate->attach(ifindex, error)) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  bool first = true;
  while (!g_stop) {
    uint64_t expiry = hafront::vip::LeaseGate::boot_now_ns() + static_cast<uint64_t>(lease_ms) * 1'000'000ULL;
    for (const auto& vip : vips) {
      if (!gate->set(vip, mac, expiry, error)) {
        std::fprintf(stderr, "%s\n", error.c_str());
        return 1;
      }
    }
    if (first) std::printf("ready\n");
    std::printf("renewed %llu\n", static_cast<unsigned long long>(expiry));
    std::fflush(stdout);
    first = false;
    std::this_thread::sleep_for(std::chrono::milliseconds(renew_ms));
  }
  return 0;  // the gate's destructor detaches its filter
}
