// Frames against golden bytes computed independently (Python struct/ipaddress, see the
// commit that added this file), not from the code under test.
#include "vip/frames.h"

#include <gtest/gtest.h>

#include "config/units.h"

namespace hafront::vip {
namespace {

const Mac kMac = {0x02, 0, 0, 0, 0, 0x01};

std::string hex(const Frame& f) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (uint8_t b : f) {
    out += d[b >> 4];
    out += d[b & 15];
  }
  return out;
}

config::Address addr(const char* s) { return *config::parse_address(s); }

TEST(Frames, GratuitousArpRequest) {
  EXPECT_EQ(hex(garp_request(kMac, addr("192.0.2.100"))),
            "ffffffffffff02000000000108060001080006040001020000000001c0000264000000000000c0000264");
}

TEST(Frames, GratuitousArpReply) {
  EXPECT_EQ(hex(garp_reply(kMac, addr("192.0.2.100"))),
            "ffffffffffff02000000000108060001080006040002020000000001c0000264020000000001c0000264");
}

TEST(Frames, ArpProbeHasZeroSender) {
  EXPECT_EQ(hex(arp_probe(kMac, addr("192.0.2.100"))),
            "ffffffffffff0200000000010806000108000604000102000000000100000000000000000000c0000264");
}

TEST(Frames, UnsolicitedNeighbourAdvertisementWithOverride) {
  EXPECT_EQ(hex(unsolicited_na(kMac, addr("2001:db8:77::100"))),
            "33330000000102000000000186dd6000000000203aff20010db8007700000000000000000100ff02000000000000"
            "00000000000000018800f63e2000000020010db80077000000000000000001000201020000000001");
}

TEST(Frames, DadSolicitation) {
  EXPECT_EQ(hex(dad_solicitation(kMac, addr("2001:db8:77::100"))),
            "3333ff00010002000000000186dd6000000000183aff00000000000000000000000000000000"
            "ff0200000000000000000001ff000100"
            "87004a780000000020010db8007700000000000000000100");
}

TEST(Claimant, FindsTheSenderOfArpForTheAddress) {
  const Mac other = {0x02, 0, 0, 0, 0, 0x02};
  Frame reply = garp_reply(other, addr("192.0.2.100"));
  auto who = claimant(reply.data(), reply.size(), addr("192.0.2.100"));
  ASSERT_TRUE(who);
  EXPECT_EQ(*who, other);
  EXPECT_FALSE(claimant(reply.data(), reply.size(), addr("192.0.2.101")));
  Frame probe = arp_probe(other, addr("192.0.2.100"));  // sender 0.0.0.0: not a claim
  EXPECT_FALSE(claimant(probe.data(), probe.size(), addr("192.0.2.100")));
}

TEST(Claimant, FindsTheTargetLinkAddressOfAnAdvertisement) {
  const Mac other = {0x02, 0, 0, 0, 0, 0x03};
  Frame na = unsolicited_na(other, addr("2001:db8:77::100"));
  auto who = claimant(na.data(), na.size(), addr("2001:db8:77::100"));
  ASSERT_TRUE(who);
  EXPECT_EQ(*who, other);
  Frame ns = dad_solicitation(other, addr("2001:db8:77::100"));  // a solicitation is no claim
  EXPECT_FALSE(claimant(ns.data(), ns.size(), addr("2001:db8:77::100")));
}

TEST(Claimant, IgnoresTruncatedAndMalformedFrames) {
  Frame na = unsolicited_na(kMac, addr("2001:db8:77::100"));
  for (size_t n = 0; n < na.size(); ++n) EXPECT_FALSE(claimant(na.data(), n, addr("2001:db8:77::100"))) << n;
  Frame arp = garp_reply(kMac, addr("192.0.2.100"));
  for (size_t n = 0; n < arp.size(); ++n) EXPECT_FALSE(claimant(arp.data(), n, addr("192.0.2.100"))) << n;
  Frame bad = na;
  bad[14 + 4] = 0xff;  // payload length beyond the frame
  bad[14 + 5] = 0xff;
  EXPECT_FALSE(claimant(bad.data(), bad.size(), addr("2001:db8:77::100")));
}

TEST(Checksum, VerifiesToZeroOverTheWholeMessage) {
  Frame na = unsolicited_na(kMac, addr("2001:db8:77::100"));
  const uint8_t* icmp = na.data() + 54;
  size_t len = na.size() - 54;
  uint16_t stored = static_cast<uint16_t>(icmp[2] << 8 | icmp[3]);
  config::Address all_nodes = addr("ff02::1");
  EXPECT_EQ(icmpv6_checksum(addr("2001:db8:77::100"), all_nodes, icmp, len), stored);
}

}  // namespace
}  // namespace hafront::vip
