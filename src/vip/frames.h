// Ethernet frames hafront sends about its VIPs, built as bytes by pure functions (checked
// against golden bytes in tests), and parsers for the answers the conflict probe listens
// for. No I/O here.
//
//   gratuitous ARP, request form  (who-has VIP tell VIP, broadcast)    RFC 5227 s3 / keepalived
//   gratuitous ARP, reply form    (VIP is-at MAC, broadcast)
//   ARP probe                     (who-has VIP tell 0.0.0.0)             RFC 5227 s2.1.1
//   unsolicited NA                (VIP is-at MAC, override, ff02::1)     RFC 4861 s7.2.6
//   DAD neighbour solicitation    (from ::, to VIP's solicited-node)   RFC 4862 s5.4.2
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "config/config_types.h"

namespace hafront::vip {

using Mac = std::array<uint8_t, 6>;
using Frame = std::vector<uint8_t>;

inline constexpr uint16_t kEtherTypeArp = 0x0806;
inline constexpr uint16_t kEtherTypeIpv6 = 0x86dd;

Frame garp_request(const Mac& mac, const config::Address& vip4);
Frame garp_reply(const Mac& mac, const config::Address& vip4);
Frame arp_probe(const Mac& mac, const config::Address& target4);
Frame unsolicited_na(const Mac& mac, const config::Address& vip6);
Frame dad_solicitation(const Mac& mac, const config::Address& target6);

// Who claims an address in a received frame: an ARP packet whose sender is `address`
// (reply or request, gratuitous or not), or a neighbour advertisement whose target is
// `address`. Returns the claimant's link-layer address. Frames start at the Ethernet header.
std::optional<Mac> claimant(const uint8_t* frame, size_t len, const config::Address& address);

// Ones' complement checksum over the IPv6 pseudo-header and an ICMPv6 message.
uint16_t icmpv6_checksum(const config::Address& src, const config::Address& dst, const uint8_t* msg, size_t len);

std::string to_string(const Mac& mac);

}  // namespace hafront::vip
