// SPDX-License-Identifier: GPL-2.0
/* The VIP lease gate: a tc clsact ingress program on the uplink of every node that may
 * hold VIPs with the lease driver. For a VIP that has an entry in `leases`:
 *
 *  - while the lease is valid (CLOCK_BOOTTIME now < expiry): ARP requests for it are
 *    answered (the request is rewritten into the reply and sent back out of the same
 *    interface), IPv6 neighbour solicitations for it are answered with a solicited,
 *    override advertisement, and packets to it pass up to the stack (where the address
 *    lives on lo, so the kernel itself never answers for it);
 *  - once the lease has run out: nothing is answered and every packet for the VIP is
 *    dropped. This needs no daemon: a paused, hung or crashed holder goes silent on time.
 *
 * Everything else passes untouched. RFC 5227 probes (sender 0.0.0.0) are answered like
 * any request while the lease is valid, which is how a holder defends its address.
 * IPv6 duplicate-address probes (source ::) are not answered (the answer would need a
 * longer packet); they pass while valid and are dropped after expiry. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/icmpv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lease_layout.h"

/* <linux/if_arp.h> pulls in libc headers; the few constants needed here. */
#define ARPHRD_ETHER 1
#define ARPOP_REQUEST 1
#define ARPOP_REPLY 2
#define NDISC_NEIGHBOUR_SOLICITATION 135
#define NDISC_NEIGHBOUR_ADVERTISEMENT 136
#define ND_OPT_SOURCE_LL_ADDR 1
#define ND_OPT_TARGET_LL_ADDR 2

struct arp_eth_ipv4 {
  __be16 htype;
  __be16 ptype;
  __u8 hlen;
  __u8 plen;
  __be16 op;
  __u8 sha[ETH_ALEN];
  __u8 spa[4];
  __u8 tha[ETH_ALEN];
  __u8 tpa[4];
} __attribute__((packed));

/* A neighbour solicitation with its source link-layer address option: the same size as
 * the advertisement that answers it. */
struct nd_msg_lla {
  __u8 type;
  __u8 code;
  __sum16 checksum;
  __be32 flags; /* NA: R S O bits; NS: reserved */
  struct in6_addr target;
  __u8 opt_type;
  __u8 opt_len; /* in units of 8 octets */
  __u8 lla[ETH_ALEN];
} __attribute__((packed));

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, HAFRONT_LEASE_MAX_VIPS);
  __type(key, struct hafront_lease_key);
  __type(value, struct hafront_lease_value);
} leases SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, HAFRONT_LEASE_STATS);
  __type(key, __u32);
  __type(value, __u64);
} stats SEC(".maps");

/* Tests set this to pin "now" (BPF_PROG_TEST_RUN); 0 in production. */
volatile __u64 now_override = 0;

static __always_inline void count(__u32 which) {
  __u64 *c = bpf_map_lookup_elem(&stats, &which);
  if (c) *c += 1;
}

static __always_inline int lease_valid(const struct hafront_lease_value *v) {
  __u64 now = now_override ? now_override : bpf_ktime_get_boot_ns();
  return now < v->expiry_ns;
}

static __always_inline struct hafront_lease_value *lookup4(const __u8 *addr) {
  struct hafront_lease_key k = {};
  k.family = HAFRONT_LEASE_AF_INET;
  __builtin_memcpy(k.addr, addr, 4);
  return bpf_map_lookup_elem(&leases, &k);
}

static __always_inline struct hafront_lease_value *lookup6(const void *addr) {
  struct hafront_lease_key k = {};
  k.family = HAFRONT_LEASE_AF_INET6;
  __builtin_memcpy(k.addr, addr, 16);
  return bpf_map_lookup_elem(&leases, &k);
}

static __always_inline int handle_arp(struct __sk_buff *skb, struct ethhdr *eth, void *data_end) {
  struct arp_eth_ipv4 *arp = (void *)(eth + 1);
  if ((void *)(arp + 1) > data_end) return TC_ACT_OK;
  if (arp->htype != bpf_htons(ARPHRD_ETHER) || arp->ptype != bpf_htons(ETH_P_IP) || arp->hlen != ETH_ALEN ||
      arp->plen != 4)
    return TC_ACT_OK;
  struct hafront_lease_value *v = lookup4(arp->tpa);
  if (!v) return TC_ACT_OK; /* not a VIP of ours */
  if (!lease_valid(v)) {
    count(HAFRONT_LEASE_DROPPED);
    return TC_ACT_SHOT;
  }
  if (arp->op != bpf_htons(ARPOP_REQUEST)) return TC_ACT_OK; /* replies: userspace watches for conflicts */
  /* The request becomes the reply, in place. */
  __u8 vip[4], requester_ip[4], requester_mac[ETH_ALEN];
  __builtin_memcpy(vip, arp->tpa, 4);
  __builtin_memcpy(requester_ip, arp->spa, 4);
  __builtin_memcpy(requester_mac, arp->sha, ETH_ALEN);
  arp->op = bpf_htons(ARPOP_REPLY);
  __builtin_memcpy(arp->tha, requester_mac, ETH_ALEN);
  __builtin_memcpy(arp->tpa, requester_ip, 4);
  __builtin_memcpy(arp->sha, v->mac, ETH_ALEN);
  __builtin_memcpy(arp->spa, vip, 4);
  __builtin_memcpy(eth->h_dest, requester_mac, ETH_ALEN);
  __builtin_memcpy(eth->h_source, v->mac, ETH_ALEN);
  count(HAFRONT_LEASE_ARP_ANSWERED);
  return bpf_redirect(skb->ifindex, 0);
}

/* The ICMPv6 checksum over the pseudo-header and the 32-byte message. */
static __always_inline __sum16 icmp6_checksum(const struct in6_addr *src, const struct in6_addr *dst,
                                              struct nd_msg_lla *msg) {
  struct {
    struct in6_addr src;
    struct in6_addr dst;
    __be32 len;
    __be32 next;
    struct nd_msg_lla msg;
  } buf = {};
  __builtin_memcpy(&buf.src, src, sizeof(buf.src));
  __builtin_memcpy(&buf.dst, dst, sizeof(buf.dst));
  buf.len = bpf_htonl(sizeof(struct nd_msg_lla));
  buf.next = bpf_htonl(IPPROTO_ICMPV6);
  __builtin_memcpy(&buf.msg, msg, sizeof(buf.msg));
  buf.msg.checksum = 0;
  __s64 sum = bpf_csum_diff(0, 0, (__be32 *)&buf, sizeof(buf), 0);
  __u32 s = (__u32)sum;
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return (__sum16)~s;
}

static __always_inline int handle_ipv6(struct __sk_buff *skb, struct ethhdr *eth, void *data_end) {
  struct ipv6hdr *ip6 = (void *)(eth + 1);
  if ((void *)(ip6 + 1) > data_end) return TC_ACT_OK;
  if (ip6->nexthdr == IPPROTO_ICMPV6) {
    struct nd_msg_lla *ns = (void *)(ip6 + 1);
    /* The type and the target are within the first 24 bytes of any solicitation. */
    if ((void *)ns + 24 <= data_end && ns->type == NDISC_NEIGHBOUR_SOLICITATION && ns->code == 0) {
      struct hafront_lease_value *v = lookup6((const void *)ns + 8);
      if (!v) return TC_ACT_OK;
      if (!lease_valid(v)) {
        count(HAFRONT_LEASE_DROPPED);
        return TC_ACT_SHOT;
      }
      /* Answer only the usual form: hop limit 255, a specified source, exactly one source
       * link-layer option. Anything else (a DAD probe) passes to the stack. */
      if ((void *)(ns + 1) > data_end) return TC_ACT_OK;
      if (ip6->hop_limit != 255 || ns->opt_type != ND_OPT_SOURCE_LL_ADDR || ns->opt_len != 1 ||
          bpf_ntohs(ip6->payload_len) != sizeof(struct nd_msg_lla))
        return TC_ACT_OK;
      __u8 requester_mac[ETH_ALEN];
      __builtin_memcpy(requester_mac, ns->lla, ETH_ALEN);
      struct in6_addr vip;
      __builtin_memcpy(&vip, (const void *)ns + 8, sizeof(vip));
      /* IPv6: back to the solicitor, from the VIP. */
      __builtin_memcpy(&ip6->daddr, &ip6->saddr, sizeof(ip6->daddr));
      __builtin_memcpy(&ip6->saddr, &vip, sizeof(vip));
      /* ICMPv6: solicited + override advertisement with our link-layer address. */
      ns->type = NDISC_NEIGHBOUR_ADVERTISEMENT;
      ns->flags = bpf_htonl(0x60000000);
      ns->opt_type = ND_OPT_TARGET_LL_ADDR;
      __builtin_memcpy(ns->lla, v->mac, ETH_ALEN);
      ns->checksum = icmp6_checksum(&ip6->saddr, &ip6->daddr, ns);
      __builtin_memcpy(eth->h_dest, requester_mac, ETH_ALEN);
      __builtin_memcpy(eth->h_source, v->mac, ETH_ALEN);
      count(HAFRONT_LEASE_NA_ANSWERED);
      return bpf_redirect(skb->ifindex, 0);
    }
  }
  struct hafront_lease_value *v = lookup6(&ip6->daddr);
  if (!v) return TC_ACT_OK;
  if (!lease_valid(v)) {
    count(HAFRONT_LEASE_DROPPED);
    return TC_ACT_SHOT;
  }
  count(HAFRONT_LEASE_PASSED);
  return TC_ACT_OK;
}

SEC("tc")
int lease_gate(struct __sk_buff *skb) {
  void *data = (void *)(long)skb->data;
  void *data_end = (void *)(long)skb->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > data_end) return TC_ACT_OK;
  if (eth->h_proto == bpf_htons(ETH_P_ARP)) return handle_arp(skb, eth, data_end);
  if (eth->h_proto == bpf_htons(ETH_P_IPV6)) return handle_ipv6(skb, eth, data_end);
  if (eth->h_proto != bpf_htons(ETH_P_IP)) return TC_ACT_OK;
  struct iphdr *ip = (void *)(eth + 1);
  if ((void *)(ip + 1) > data_end) return TC_ACT_OK;
  struct hafront_lease_value *v = lookup4((const __u8 *)&ip->daddr);
  if (!v) return TC_ACT_OK;
  if (!lease_valid(v)) {
    count(HAFRONT_LEASE_DROPPED);
    return TC_ACT_SHOT;
  }
  count(HAFRONT_LEASE_PASSED);
  return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
