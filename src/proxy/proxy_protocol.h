// PROXY protocol headers (HAProxy's proxy-protocol.txt, versions 1 and 2) that hafront sends
// to a server before the client's bytes, so the server learns the client's address.
//
// Pure functions: they build bytes from two endpoints and never fail. A pair of endpoints
// the protocol cannot express (different families) gives "PROXY UNKNOWN\r\n" (v1) or a
// LOCAL header (v2), which the spec asks receivers to accept.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "config/config_types.h"

namespace hafront::proxy {

// The longest header either version produces: v1 is at most 107 bytes
// ("PROXY TCP6 " + 2 x 39 + 2 x 5 + 3 spaces + CRLF); v2 with IPv6 is 16 + 36.
inline constexpr size_t kMaxProxyHeader = 108;

// The v2 signature, the first 12 bytes of every v2 header.
inline constexpr std::array<uint8_t, 12> kProxyV2Signature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                              0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

// `source` is the client, `destination` the address the client connected to (the
// listener's). Writes the header into `out` and returns its length; 0 for ProxyProtocol::None.
size_t encode_proxy_header(config::ProxyProtocol version, const config::Endpoint& source,
                           const config::Endpoint& destination, std::span<uint8_t, kMaxProxyHeader> out) noexcept;

}  // namespace hafront::proxy
