#include "vip/frames.h"

#include <cstdio>
#include <cstring>

namespace hafront::vip {
namespace {

constexpr Mac kBroadcast = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
constexpr uint16_t kArpHwEther = 1;
constexpr uint16_t kArpRequest = 1;
constexpr uint16_t kArpReply = 2;
constexpr uint8_t kIcmpv6NeighborSolicitation = 135;
constexpr uint8_t kIcmpv6NeighborAdvertisement = 136;
constexpr uint8_t kNdOptSourceLinkAddr = 1;
constexpr uint8_t kNdOptTargetLinkAddr = 2;
constexpr uint8_t kNaFlagOverride = 0x20;  // first byte of the NA flags word
constexpr uint8_t kIpProtoIcmpv6 = 58;

void put16(Frame& f, uint16_t v) {
  f.push_back(static_cast<uint8_t>(v >> 8));
  f.push_back(static_cast<uint8_t>(v));
}
void put(Frame& f, const uint8_t* p, size_t n) { f.insert(f.end(), p, p + n); }
void put(Frame& f, const Mac& m) { put(f, m.data(), m.size()); }
uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

void ethernet(Frame& f, const Mac& dst, const Mac& src, uint16_t type) {
  put(f, dst);
  put(f, src);
  put16(f, type);
}

Frame arp(uint16_t op, const Mac& dst, const Mac& sha, const uint8_t* spa, const Mac& tha, const uint8_t* tpa) {
  Frame f;
  f.reserve(42);
  ethernet(f, dst, sha, kEtherTypeArp);
  put16(f, kArpHwEther);
  put16(f, 0x0800);  // protocol: IPv4
  f.push_back(6);    // hardware address length
  f.push_back(4);    // protocol address length
  put16(f, op);
  put(f, sha);
  put(f, spa, 4);
  put(f, tha);
  put(f, tpa, 4);
  return f;
}

Frame ipv6_icmp(const Mac& eth_dst, const Mac& eth_src, const config::Address& src, const config::Address& dst,
                const std::vector<uint8_t>& icmp) {
  Frame f;
  f.reserve(14 + 40 + icmp.size());
  ethernet(f, eth_dst, eth_src, kEtherTypeIpv6);
  f.push_back(0x60);  // version 6, traffic class 0
  f.push_back(0);
  f.push_back(0);
  f.push_back(0);  // flow label 0
  put16(f, static_cast<uint16_t>(icmp.size()));
  f.push_back(kIpProtoIcmpv6);
  f.push_back(255);  // hop limit: ND messages must carry 255
  put(f, src.bytes.data(), 16);
  put(f, dst.bytes.data(), 16);
  std::vector<uint8_t> msg = icmp;
  uint16_t sum = icmpv6_checksum(src, dst, msg.data(), msg.size());
  msg[2] = static_cast<uint8_t>(sum >> 8);
  msg[3] = static_cast<uint8_t>(sum);
  put(f, msg.data(), msg.size());
  return f;
}

config::Address v6(std::initializer_list<uint8_t> bytes) {
  config::Address a;
  a.family = config::Address::Family::V6;
  std::copy(bytes.begin(), bytes.end(), a.bytes.begin());
  return a;
}

}  // namespace

uint16_t icmpv6_checksum(const config::Address& src, const config::Address& dst, const uint8_t* msg, size_t len) {
  uint32_t sum = 0;
  auto add = [&](const uint8_t* p, size_t n) {
    for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
    if (n % 2) sum += static_cast<uint32_t>(p[n - 1] << 8);
  };
  add(src.bytes.data(), 16);
  add(dst.bytes.data(), 16);
  uint8_t tail[8] = {static_cast<uint8_t>(len >> 24), static_cast<uint8_t>(len >> 16),
                     static_cast<uint8_t>(len >> 8),  static_cast<uint8_t>(len),
                     0, 0, 0, kIpProtoIcmpv6};
  add(tail, 8);
  // The checksum field itself (bytes 2-3) counts as zero.
  for (size_t i = 0; i + 1 < len; i += 2) {
    if (i == 2) continue;
    sum += static_cast<uint32_t>(msg[i] << 8 | msg[i + 1]);
  }
  if (len % 2) sum += static_cast<uint32_t>(msg[len - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

Frame garp_request(const Mac& mac, const config::Address& vip4) {
  // RFC 5227: target hardware address zero in the request form.
  return arp(kArpRequest, kBroadcast, mac, vip4.bytes.data(), Mac{}, vip4.bytes.data());
}

Frame garp_reply(const Mac& mac, const config::Address& vip4) {
  return arp(kArpReply, kBroadcast, mac, vip4.bytes.data(), mac, vip4.bytes.data());
}

Frame arp_probe(const Mac& mac, const config::Address& target4) {
  static constexpr uint8_t kZero[4] = {};
  return arp(kArpRequest, kBroadcast, mac, kZero, Mac{}, target4.bytes.data());
}

Frame unsolicited_na(const Mac& mac, const config::Address& vip6) {
  std::vector<uint8_t> icmp = {kIcmpv6NeighborAdvertisement, 0, 0, 0, kNaFlagOverride, 0, 0, 0};
  icmp.insert(icmp.end(), vip6.bytes.begin(), vip6.bytes.end());
  icmp.push_back(kNdOptTargetLinkAddr);
  icmp.push_back(1);  // option length in units of 8 bytes
  icmp.insert(icmp.end(), mac.begin(), mac.end());
  const Mac all_nodes_mac = {0x33, 0x33, 0, 0, 0, 1};
  const auto all_nodes = v6({0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  return ipv6_icmp(all_nodes_mac, mac, vip6, all_nodes, icmp);
}

Frame dad_solicitation(const Mac& mac, const config::Address& target6) {
  std::vector<uint8_t> icmp = {kIcmpv6NeighborSolicitation, 0, 0, 0, 0, 0, 0, 0};
  icmp.insert(icmp.end(), target6.bytes.begin(), target6.bytes.end());
  // From the unspecified address a solicitation carries no source link-layer option.
  const uint8_t* t = target6.bytes.data();
  const Mac snm_mac = {0x33, 0x33, 0xff, t[13], t[14], t[15]};
  const auto snm = v6({0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, t[13], t[14], t[15]});
  return ipv6_icmp(snm_mac, mac, v6({}), snm, icmp);
}

std::optional<Mac> claimant(const uint8_t* f, size_t len, const config::Address& address) {
  if (len < 14) return std::nullopt;
  uint16_t type = get16(f + 12);
  if (!address.is_v6() && type == kEtherTypeArp && len >= 42) {
    const uint8_t* a = f + 14;
    if (get16(a) != kArpHwEther || get16(a + 2) != 0x0800 || a[4] != 6 || a[5] != 4) return std::nullopt;
    if (std::memcmp(a + 14, address.bytes.data(), 4) != 0) return std::nullopt;  // sender IP
    Mac m;
    std::memcpy(m.data(), a + 8, 6);
    return m;
  }
  if (address.is_v6() && type == kEtherTypeIpv6 && len >= 14 + 40 + 24) {
    const uint8_t* ip = f + 14;
    if ((ip[0] >> 4) != 6 || ip[6] != kIpProtoIcmpv6) return std::nullopt;
    size_t payload = get16(ip + 4);
    if (14 + 40 + payload > len || payload < 24) return std::nullopt;
    const uint8_t* icmp = ip + 40;
    if (icmp[0] != kIcmpv6NeighborAdvertisement) return std::nullopt;
    if (std::memcmp(icmp + 8, address.bytes.data(), 16) != 0) return std::nullopt;
    // The target link-layer option names the claimant; without one, the frame's source.
    Mac m;
    std::memcpy(m.data(), f + 6, 6);
    for (size_t off = 24; off + 8 <= payload;) {
      uint8_t opt_len = icmp[off + 1];
      if (opt_len == 0) break;
      if (icmp[off] == kNdOptTargetLinkAddr && opt_len == 1) std::memcpy(m.data(), icmp + off + 2, 6);
      off += static_cast<size_t>(opt_len) * 8;
    }
    return m;
  }
  return std::nullopt;
}

std::string to_string(const Mac& m) {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
  return buf;
}

}  // namespace hafront::vip
