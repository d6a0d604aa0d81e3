#include "vip/lease_gate.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/pkt_cls.h>
#include <time.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cerrno>
#include <cstring>

#include "lease.skel.h"
#include "lease_layout.h"

namespace hafront::vip {

static_assert(sizeof(hafront_lease_key) == 20, "key layout shared with bpf/lease.bpf.c");
static_assert(sizeof(hafront_lease_value) == 16, "value layout shared with bpf/lease.bpf.c");

namespace {

// Our own filter on the clsact ingress hook, so that detaching removes exactly it.
constexpr uint32_t kHandle = 0x68af;
constexpr uint32_t kPriority = 0x68af & 0x7fff;

hafront_lease_key key_of(const config::Address& a) {
  hafront_lease_key k{};
  k.family = a.is_v6() ? HAFRONT_LEASE_AF_INET6 : HAFRONT_LEASE_AF_INET;
  std::copy_n(a.bytes.begin(), a.is_v6() ? 16 : 4, k.addr);
  return k;
}

std::string errno_text(int e) { return std::strerror(e < 0 ? -e : e); }

// libbpf's own messages go to the log at debug level: errors that matter come back as
// return codes (attaching next to an existing clsact qdisc, for one, is expected).
int libbpf_to_log(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char line[512];
  int n = std::vsnprintf(line, sizeof line, format, args);
  std::string text(line, n > 0 ? std::min<size_t>(static_cast<size_t>(n), sizeof line - 1) : 0);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  spdlog::debug("libbpf: {}", text);
  return n;
}

}  // namespace

uint64_t LeaseGate::boot_now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

std::unique_ptr<LeaseGate> LeaseGate::load(std::string& error) {
  libbpf_set_print(libbpf_to_log);
  std::unique_ptr<LeaseGate> gate(new LeaseGate());
  gate->skel_ = lease_bpf::open_and_load();
  if (!gate->skel_) {
    error = "cannot load the lease gate BPF program: " + errno_text(errno);
    return nullptr;
  }
  return gate;
}

LeaseGate::~LeaseGate() {
  for (int ifindex : std::vector<int>(attached_)) detach(ifindex);
  if (skel_) lease_bpf::destroy(skel_);
}

bool LeaseGate::attach(int ifindex, std::string& error) {
  if (std::find(attached_.begin(), attached_.end(), ifindex) != attached_.end()) return true;
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
  int rc = bpf_tc_hook_create(&hook);  // the clsact qdisc; EEXIST when someone made it already
  if (rc != 0 && rc != -EEXIST) {
    error = "cannot create the clsact qdisc on ifindex " + std::to_string(ifindex) + ": " + errno_text(rc);
    return false;
  }
  LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = bpf_program__fd(skel_->progs.lease_gate), .flags = BPF_TC_F_REPLACE,
              .handle = kHandle, .priority = kPriority);
  rc = bpf_tc_attach(&hook, &opts);
  if (rc != 0) {
    error = "cannot attach the lease gate to ifindex " + std::to_string(ifindex) + ": " + errno_text(rc);
    return false;
  }
  attached_.push_back(ifindex);
  return true;
}

void LeaseGate::detach(int ifindex) {
  auto it = std::find(attached_.begin(), attached_.end(), ifindex);
  if (it == attached_.end()) return;
  attached_.erase(it);
  // Only our filter: bpf_tc_hook_destroy would delete the whole qdisc, other users' too.
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
  LIBBPF_OPTS(bpf_tc_opts, opts, .handle = kHandle, .priority = kPriority);
  bpf_tc_detach(&hook, &opts);
}

bool LeaseGate::set(const config::Address& vip, const Mac& mac, uint64_t expiry_ns, std::string& error) {
  hafront_lease_key k = key_of(vip);
  hafront_lease_value v{};
  // Count the write for outside readers (tests/chaos): read, count, write.
  unsigned short writes = bpf_map_lookup_elem(bpf_map__fd(skel_->maps.leases), &k, &v) == 0 ? v.writes : 0;
  v = hafront_lease_value{};
  v.writes = static_cast<unsigned short>(writes + 1);
  v.expiry_ns = expiry_ns;
  std::copy(mac.begin(), mac.end(), v.mac);
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.leases), &k, &v, BPF_ANY) != 0) {
    error = "cannot write the lease of " + vip.str() + ": " + errno_text(errno);
    return false;
  }
  return true;
}

bool LeaseGate::expire(const config::Address& vip) {
  hafront_lease_key k = key_of(vip);
  hafront_lease_value v{};
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.leases), &k, &v) != 0) return false;
  v.expiry_ns = 0;
  ++v.writes;
  return bpf_map_update_elem(bpf_map__fd(skel_->maps.leases), &k, &v, BPF_EXIST) == 0;
}

bool LeaseGate::forget(const config::Address& vip) {
  hafront_lease_key k = key_of(vip);
  return bpf_map_delete_elem(bpf_map__fd(skel_->maps.leases), &k) == 0;
}

std::optional<uint64_t> LeaseGate::expiry(const config::Address& vip) const {
  hafront_lease_key k = key_of(vip);
  hafront_lease_value v{};
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.leases), &k, &v) != 0) return std::nullopt;
  return v.expiry_ns;
}

std::vector<uint64_t> LeaseGate::stats() const {
  int cpus = libbpf_num_possible_cpus();
  std::vector<uint64_t> out(HAFRONT_LEASE_STATS, 0);
  if (cpus <= 0) return out;
  std::vector<uint64_t> per_cpu(static_cast<size_t>(cpus));
  for (uint32_t i = 0; i < HAFRONT_LEASE_STATS; ++i) {
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.stats), &i, per_cpu.data()) == 0) {
      for (uint64_t c : per_cpu) out[i] += c;
    }
  }
  return out;
}

int LeaseGate::program_fd() const { return bpf_program__fd(skel_->progs.lease_gate); }

void LeaseGate::set_now_override(uint64_t ns) { skel_->bss->now_override = ns; }

}  // namespace hafront::vip
