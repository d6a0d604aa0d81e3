/* The layout shared by the lease gate program (lease.bpf.c) and its loader
 * (src/vip/lease_gate.cc): one map entry per VIP. Plain C, fixed-size types only; the
 * loader static_asserts the sizes. */
#ifndef HAFRONT_LEASE_LAYOUT_H
#define HAFRONT_LEASE_LAYOUT_H

#define HAFRONT_LEASE_MAX_VIPS 256

/* AF_INET / AF_INET6 as the kernel numbers them (no libc header in BPF code). */
#define HAFRONT_LEASE_AF_INET 2
#define HAFRONT_LEASE_AF_INET6 10

struct hafront_lease_key {
  unsigned char family;   /* HAFRONT_LEASE_AF_INET or _INET6 */
  unsigned char pad[3];   /* zero */
  unsigned char addr[16]; /* network order; IPv4 in addr[0..3], the rest zero */
};

struct hafront_lease_value {
  unsigned long long expiry_ns; /* CLOCK_BOOTTIME; the VIP is answered while now < expiry */
  unsigned char mac[6];         /* the uplink's MAC: source of the answers */
  unsigned short writes;        /* userspace's writes of this entry (wraps); the program
                                   ignores it: an outside reader (tests/chaos) sees by it
                                   that a value came and went between two of its reads */
};

/* Counters, one slot each in a per-CPU array. */
enum hafront_lease_stat {
  HAFRONT_LEASE_ARP_ANSWERED = 0,
  HAFRONT_LEASE_NA_ANSWERED = 1,
  HAFRONT_LEASE_PASSED = 2,   /* traffic to a VIP with a valid lease */
  HAFRONT_LEASE_DROPPED = 3,  /* anything for a VIP whose lease ran out */
  HAFRONT_LEASE_STATS = 4,
};

#endif
