// The lease gate BPF program, run by the kernel on crafted frames with BPF_PROG_TEST_RUN
// (no interface, no network): ARP and neighbour solicitations for a VIP are answered only
// while its lease is valid, traffic to it passes only while valid, unrelated traffic is
// untouched. "Now" is pinned through the program's now_override, so the expiry boundary is
// exact. Needs root (loading BPF); as a normal user these tests are skipped with that reason.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "lease_layout.h"
#include "vip/lease_gate.h"

namespace hafront::vip {
namespace {

using Bytes = std::vector<uint8_t>;

const Mac kOurMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
const Mac kClientMac{0x02, 0x00, 0x00, 0x00, 0x00, 0xc8};
constexpr uint64_t kExpiry = 5'000'000'000ULL;

config::Address v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  config::Address x;
  x.bytes[0] = a;
  x.bytes[1] = b;
  x.bytes[2] = c;
  x.bytes[3] = d;
  return x;
}

config::Address v6(std::initializer_list<uint8_t> tail) {  // 2001:db8:77:: + tail in the last bytes
  config::Address x;
  x.family = config::Address::Family::V6;
  uint8_t prefix[] = {0x20, 0x01, 0x0d, 0xb8, 0x00, 0x77};
  std::memcpy(x.bytes.data(), prefix, sizeof prefix);
  size_t i = 16 - tail.size();
  for (uint8_t b : tail) x.bytes[i++] = b;
  return x;
}

void put(Bytes& b, std::initializer_list<uint8_t> x) { b.insert(b.end(), x); }
void put(Bytes& b, const Mac& m) { b.insert(b.end(), m.begin(), m.end()); }
void put4(Bytes& b, const config::Address& a) { b.insert(b.end(), a.bytes.begin(), a.bytes.begin() + 4); }
void put16(Bytes& b, const config::Address& a) { b.insert(b.end(), a.bytes.begin(), a.bytes.end()); }

Bytes arp_request(const config::Address& sender_ip, const config::Address& target_ip) {
  Bytes b;
  put(b, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
  put(b, kClientMac);
  put(b, {0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01});
  put(b, kClientMac);
  put4(b, sender_ip);
  put(b, {0, 0, 0, 0, 0, 0});
  put4(b, target_ip);
  return b;
}

Bytes ipv4_tcp_syn(const config::Address& dst) {
  Bytes b;
  put(b, kOurMac);
  put(b, kClientMac);
  put(b, {0x08, 0x00});
  put(b, {0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0});
  put4(b, v4(192, 0, 2, 200));
  put4(b, dst);
  put(b, {0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0});
  return b;
}

// A neighbour solicitation from 2001:db8:77::c8 (with its link-layer address), or a DAD
// probe from :: without one.
Bytes neighbour_solicitation(const config::Address& target, bool dad = false) {
  Bytes b;
  put(b, {0x33, 0x33, 0xff, target.bytes[13], target.bytes[14], target.bytes[15]});
  put(b, kClientMac);
  put(b, {0x86, 0xdd});
  uint16_t payload = dad ? 24 : 32;
  put(b, {0x60, 0, 0, 0, static_cast<uint8_t>(payload >> 8), static_cast<uint8_t>(payload), 58, 255});
  if (dad) {
    b.insert(b.end(), 16, 0);
  } else {
    put16(b, v6({0xc8}));
  }
  put(b, {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, target.bytes[13], target.bytes[14], target.bytes[15]});
  put(b, {135, 0, 0, 0, 0, 0, 0, 0});
  put16(b, target);
  if (!dad) {
    put(b, {1, 1});
    put(b, kClientMac);
  }
  return b;
}

// The ICMPv6 checksum, computed here independently of the program: the one's complement
// sum over the pseudo-header and the message must be 0xffff.
bool icmp6_checksum_ok(const Bytes& frame) {
  const uint8_t* ip6 = frame.data() + 14;
  size_t len = (size_t{ip6[4]} << 8) | ip6[5];
  uint32_t sum = 0;
  auto add = [&](const uint8_t* p, size_t n) {
    for (size_t i = 0; i + 1 < n; i += 2) sum += (uint32_t{p[i]} << 8) | p[i + 1];
  };
  add(ip6 + 8, 32);  // source and destination
  sum += static_cast<uint32_t>(len);
  sum += 58;
  add(ip6 + 40, len);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return sum == 0xffff;
}

class LeaseGateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "loading BPF needs root (scripts/test runs as root)";
    std::string error;
    gate_ = LeaseGate::load(error);
    ASSERT_TRUE(gate_) << error;
    ASSERT_TRUE(gate_->set(vip4_, kOurMac, kExpiry, error)) << error;
    ASSERT_TRUE(gate_->set(vip6_, kOurMac, kExpiry, error)) << error;
  }

  // Runs the program once on `in` at time `now`; returns the verdict, `out` the frame.
  int run(const Bytes& in, uint64_t now, Bytes* out = nullptr) {
    gate_->set_now_override(now);
    Bytes buf(in.size() + 64);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.data(), .data_out = buf.data(),
                .data_size_in = static_cast<uint32_t>(in.size()), .data_size_out = static_cast<uint32_t>(buf.size()),
                .repeat = 1);
    int rc = bpf_prog_test_run_opts(gate_->program_fd(), &opts);
    EXPECT_EQ(rc, 0) << std::strerror(errno);
    buf.resize(opts.data_size_out);
    if (out) *out = buf;
    return static_cast<int>(opts.retval);
  }

  std::unique_ptr<LeaseGate> gate_;
  config::Address vip4_ = v4(192, 0, 2, 100);
  config::Address vip6_ = v6({0x01, 0x00});
};

TEST_F(LeaseGateTest, ArpRequestIsAnsweredWhileTheLeaseIsValid) {
  Bytes out;
  ASSERT_EQ(run(arp_request(v4(192, 0, 2, 200), vip4_), kExpiry - 1, &out), TC_ACT_REDIRECT);
  ASSERT_EQ(out.size(), 42u);
  Bytes want;
  put(want, kClientMac);  // back to the asker
  put(want, kOurMac);
  put(want, {0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x02});  // reply
  put(want, kOurMac);
  put4(want, vip4_);
  put(want, kClientMac);
  put4(want, v4(192, 0, 2, 200));
  EXPECT_EQ(out, want);
  EXPECT_EQ(gate_->stats()[HAFRONT_LEASE_ARP_ANSWERED], 1u);
}

TEST_F(LeaseGateTest, NothingIsAnsweredFromTheExpiryOn) {
  EXPECT_EQ(run(arp_request(v4(192, 0, 2, 200), vip4_), kExpiry, nullptr), TC_ACT_SHOT);
  EXPECT_EQ(run(arp_request(v4(192, 0, 2, 200), vip4_), kExpiry + 1'000'000'000ULL, nullptr), TC_ACT_SHOT);
  EXPECT_EQ(gate_->stats()[HAFRONT_LEASE_ARP_ANSWERED], 0u);
  EXPECT_EQ(gate_->stats()[HAFRONT_LEASE_DROPPED], 2u);
  // expire() ends it at once, whatever the clock says.
  ASSERT_TRUE(gate_->expire(vip4_));
  EXPECT_EQ(run(arp_request(v4(192, 0, 2, 200), vip4_), 1, nullptr), TC_ACT_SHOT);
}

TEST_F(LeaseGateTest, Rfc5227ProbeIsAnsweredToDefendTheAddress) {
  Bytes out;
  ASSERT_EQ(run(arp_request(v4(0, 0, 0, 0), vip4_), 1, &out), TC_ACT_REDIRECT);
  EXPECT_EQ(out[21], 2);                                  // a reply
  EXPECT_EQ(Bytes(out.begin() + 38, out.begin() + 42), Bytes(4, 0));  // to 0.0.0.0, as the kernel does
}

TEST_F(LeaseGateTest, TrafficToTheVipPassesOnlyWhileValid) {
  EXPECT_EQ(run(ipv4_tcp_syn(vip4_), kExpiry - 1), TC_ACT_OK);
  EXPECT_EQ(run(ipv4_tcp_syn(vip4_), kExpiry), TC_ACT_SHOT);
  EXPECT_EQ(gate_->stats()[HAFRONT_LEASE_PASSED], 1u);
}

TEST_F(LeaseGateTest, UnrelatedTrafficIsUntouched) {
  Bytes in = arp_request(v4(192, 0, 2, 200), v4(192, 0, 2, 11));
  Bytes out;
  EXPECT_EQ(run(in, kExpiry + 1, &out), TC_ACT_OK);
  EXPECT_EQ(out, in);
  EXPECT_EQ(run(ipv4_tcp_syn(v4(192, 0, 2, 11)), kExpiry + 1), TC_ACT_OK);
  EXPECT_EQ(run(neighbour_solicitation(v6({0x11})), kExpiry + 1), TC_ACT_OK);
  // Runts and other protocols.
  EXPECT_EQ(run(Bytes(in.begin(), in.begin() + 20), 1), TC_ACT_OK);
  Bytes lldp(60, 0);
  lldp[12] = 0x88;
  lldp[13] = 0xcc;
  EXPECT_EQ(run(lldp, 1), TC_ACT_OK);
  EXPECT_EQ(gate_->stats()[HAFRONT_LEASE_DROPPED], 0u);
}

TEST_F(LeaseGateTest, NeighbourSolicitationIsAnsweredWithAnAdvertisement) {
  Bytes out;
  ASSERT_EQ(run(neighbour_solicitation(vip6_), kExpiry - 1, &out), TC_ACT_REDIRECT);
  ASSERT_EQ(out.size(), 14u + 40u + 32u);
  EXPECT_EQ(Bytes(out.begin(), out.begin() + 6), Bytes(kClientMac.begin(), kClientMac.end()));
  EXPECT_EQ(Bytes(out.begin() + 6, out.begin() + 12), Bytes(kOurMac.begin(), kOurMac.end()));
  const uint8_t* ip6 = out.data() + 14;
  Bytes src(ip6 + 8, ip6 + 24), dst(ip6 + 24, ip6 + 40);
  EXPECT_EQ(src, Bytes(vip6_.bytes.begin(), vip6_.bytes.end()));          // from the VIP
  config::Address solicitor = v6({0xc8});
  EXPECT_EQ(dst, Bytes(solicitor.bytes.begin(), solicitor.bytes.end()));  // to the asker
  EXPECT_EQ(ip6[7], 255);                                                 // hop limit
  const uint8_t* na = ip6 + 40;
  EXPECT_EQ(na[0], 136);    // neighbour advertisement
  EXPECT_EQ(na[4], 0x60);   // solicited + override
  EXPECT_EQ(Bytes(na + 8, na + 24), Bytes(vip6_.bytes.begin(), vip6_.bytes.end()));
  EXPECT_EQ(na[24], 2);     // target link-layer address option
  EXPECT_EQ(na[25], 1);
  EXPECT_EQ(Bytes(na + 26, na + 32), Bytes(kOurMac.begin(), kOurMac.end()));
  EXPECT_TRUE(icmp6_checksum_ok(out));
  EXPECT_EQ(gate_->stats()[HAFRONT_LEASE_NA_ANSWERED], 1u);
  // After expiry: silence.
  EXPECT_EQ(run(neighbour_solicitation(vip6_), kExpiry), TC_ACT_SHOT);
}

TEST_F(LeaseGateTest, DuplicateAddressProbesPassWhileValidAndAreDroppedAfter) {
  Bytes in = neighbour_solicitation(vip6_, /*dad=*/true);
  Bytes out;
  EXPECT_EQ(run(in, kExpiry - 1, &out), TC_ACT_OK);
  EXPECT_EQ(out, in);
  EXPECT_EQ(run(in, kExpiry), TC_ACT_SHOT);
}

TEST_F(LeaseGateTest, MapEntriesRoundTrip) {
  EXPECT_EQ(gate_->expiry(vip4_), kExpiry);
  ASSERT_TRUE(gate_->expire(vip4_));
  EXPECT_EQ(gate_->expiry(vip4_), 0u);
  ASSERT_TRUE(gate_->forget(vip4_));
  EXPECT_EQ(gate_->expiry(vip4_), std::nullopt);
  // Without an entry the VIP is not gated at all.
  EXPECT_EQ(run(ipv4_tcp_syn(vip4_), kExpiry + 1), TC_ACT_OK);
  EXPECT_FALSE(gate_->expire(vip4_));
  EXPECT_GT(LeaseGate::boot_now_ns(), 0u);
}

}  // namespace
}  // namespace hafront::vip
