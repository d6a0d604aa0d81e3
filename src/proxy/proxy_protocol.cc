#include "proxy/proxy_protocol.h"

#include <arpa/inet.h>

#include <cstdio>
#include <cstring>

namespace hafront::proxy {
namespace {

// v2 command and family bytes (proxy-protocol.txt, section 2.2).
constexpr uint8_t kV2Proxy = 0x21;  // version 2, PROXY
constexpr uint8_t kV2Local = 0x20;  // version 2, LOCAL
constexpr uint8_t kV2TcpOverIpv4 = 0x11;
constexpr uint8_t kV2TcpOverIpv6 = 0x21;
constexpr uint8_t kV2Unspecified = 0x00;

size_t put(std::span<uint8_t, kMaxProxyHeader> out, size_t at, const void* data, size_t n) noexcept {
  std::memcpy(out.data() + at, data, n);
  return at + n;
}

size_t put_port(std::span<uint8_t, kMaxProxyHeader> out, size_t at, uint16_t port) noexcept {
  out[at] = static_cast<uint8_t>(port >> 8);
  out[at + 1] = static_cast<uint8_t>(port & 0xff);
  return at + 2;
}

size_t encode_v1(const config::Endpoint& src, const config::Endpoint& dst,
                 std::span<uint8_t, kMaxProxyHeader> out) noexcept {
  if (src.address.family != dst.address.family) {
    static constexpr char kUnknown[] = "PROXY UNKNOWN\r\n";
    return put(out, 0, kUnknown, sizeof kUnknown - 1);
  }
  const bool v6 = src.address.is_v6();
  const int af = v6 ? AF_INET6 : AF_INET;
  char s[INET6_ADDRSTRLEN] = {};
  char d[INET6_ADDRSTRLEN] = {};
  inet_ntop(af, src.address.bytes.data(), s, sizeof s);
  inet_ntop(af, dst.address.bytes.data(), d, sizeof d);
  char line[kMaxProxyHeader + 1];
  int n = std::snprintf(line, sizeof line, "PROXY %s %s %s %u %u\r\n", v6 ? "TCP6" : "TCP4", s, d,
                        unsigned{src.port}, unsigned{dst.port});
  if (n <= 0 || static_cast<size_t>(n) > kMaxProxyHeader) return 0;  // cannot happen: see kMaxProxyHeader
  return put(out, 0, line, static_cast<size_t>(n));
}

size_t encode_v2(const config::Endpoint& src, const config::Endpoint& dst,
                 std::span<uint8_t, kMaxProxyHeader> out) noexcept {
  size_t at = put(out, 0, kProxyV2Signature.data(), kProxyV2Signature.size());
  if (src.address.family != dst.address.family) {
    out[at++] = kV2Local;
    out[at++] = kV2Unspecified;
    return put_port(out, at, 0);  // no address block
  }
  const bool v6 = src.address.is_v6();
  const size_t addr_len = v6 ? 16 : 4;
  out[at++] = kV2Proxy;
  out[at++] = v6 ? kV2TcpOverIpv6 : kV2TcpOverIpv4;
  at = put_port(out, at, static_cast<uint16_t>(2 * addr_len + 4));
  at = put(out, at, src.address.bytes.data(), addr_len);
  at = put(out, at, dst.address.bytes.data(), addr_len);
  at = put_port(out, at, src.port);
  return put_port(out, at, dst.port);
}

}  // namespace

size_t encode_proxy_header(config::ProxyProtocol version, const config::Endpoint& source,
                           const config::Endpoint& destination, std::span<uint8_t, kMaxProxyHeader> out) noexcept {
  switch (version) {
    case config::ProxyProtocol::None: return 0;
    case config::ProxyProtocol::V1: return encode_v1(source, destination, out);
    case config::ProxyProtocol::V2: return encode_v2(source, destination, out);
  }
  return 0;
}

}  // namespace hafront::proxy
