// PROXY protocol headers against the exact bytes of HAProxy's proxy-protocol.txt.
#include "proxy/proxy_protocol.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/units.h"

namespace hafront::proxy {
namespace {

config::Endpoint ep(const std::string& text) {
  auto e = config::parse_endpoint(text);
  EXPECT_TRUE(e.has_value()) << text;
  return e.value_or(config::Endpoint{});
}

std::vector<uint8_t> encode(config::ProxyProtocol v, const std::string& src, const std::string& dst) {
  std::array<uint8_t, kMaxProxyHeader> out{};
  size_t n = encode_proxy_header(v, ep(src), ep(dst), out);
  return {out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n)};
}

std::string text(const std::vector<uint8_t>& b) { return {b.begin(), b.end()}; }

std::vector<uint8_t> signature_and(std::initializer_list<uint8_t> rest) {
  std::vector<uint8_t> out;
  out.reserve(kProxyV2Signature.size() + rest.size());
  for (uint8_t b : kProxyV2Signature) out.push_back(b);
  for (uint8_t b : rest) out.push_back(b);
  return out;
}

TEST(ProxyProtocol, VersionOneIpv4IsTheSpecExample) {
  EXPECT_EQ(text(encode(config::ProxyProtocol::V1, "192.168.0.1:56324", "192.168.0.11:443")),
            "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
}

TEST(ProxyProtocol, VersionOneIpv6) {
  EXPECT_EQ(text(encode(config::ProxyProtocol::V1, "[2001:db8::1]:56324", "[::1]:443")),
            "PROXY TCP6 2001:db8::1 ::1 56324 443\r\n");
}

TEST(ProxyProtocol, VersionOneLongestHeaderFits) {
  auto h = encode(config::ProxyProtocol::V1, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
                  "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
  EXPECT_EQ(h.size(), 104u);  // the spec's worst case ("107 bytes" counts a wider form)
  EXPECT_EQ(text(h).substr(0, 11), "PROXY TCP6 ");
  EXPECT_EQ(text(h).substr(h.size() - 2), "\r\n");
}

TEST(ProxyProtocol, VersionOneMixedFamiliesIsUnknown) {
  EXPECT_EQ(text(encode(config::ProxyProtocol::V1, "192.0.2.1:1", "[::1]:2")), "PROXY UNKNOWN\r\n");
}

TEST(ProxyProtocol, VersionTwoIpv4ExactBytes) {
  EXPECT_EQ(encode(config::ProxyProtocol::V2, "192.168.0.1:56324", "192.168.0.11:443"),
            signature_and({0x21, 0x11, 0x00, 0x0C,              // v2 PROXY, TCP over IPv4, 12 bytes
                           0xC0, 0xA8, 0x00, 0x01,              // source address
                           0xC0, 0xA8, 0x00, 0x0B,              // destination address
                           0xDC, 0x04,                          // source port 56324
                           0x01, 0xBB}));                       // destination port 443
}

TEST(ProxyProtocol, VersionTwoIpv6ExactBytes) {
  EXPECT_EQ(encode(config::ProxyProtocol::V2, "[2001:db8::1]:1", "[2001:db8::2]:65535"),
            signature_and({0x21, 0x21, 0x00, 0x24,  // v2 PROXY, TCP over IPv6, 36 bytes
                           0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
                           0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02,
                           0x00, 0x01, 0xFF, 0xFF}));
}

TEST(ProxyProtocol, VersionTwoMixedFamiliesIsLocal) {
  EXPECT_EQ(encode(config::ProxyProtocol::V2, "192.0.2.1:1", "[::1]:2"), signature_and({0x20, 0x00, 0x00, 0x00}));
}

TEST(ProxyProtocol, NoneWritesNothing) {
  EXPECT_TRUE(encode(config::ProxyProtocol::None, "192.0.2.1:1", "192.0.2.2:2").empty());
}

}  // namespace
}  // namespace hafront::proxy
