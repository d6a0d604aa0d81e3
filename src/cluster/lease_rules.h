// The pure rules of the lease protocol (doc/lease.md), kept apart from the cluster
// manager's I/O so they are unit-tested on their own and read like the safety argument
// (doc/lease-safety.md).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace hafront::cluster::lease {

// How many other members must have acknowledged a state of this node before it may renew
// from it: with this node they form a majority of the `configured` nodes, so every quorate
// partition without this node contains one of them. Nodes proven down by a fence (`fenced`,
// not members) count as acknowledging: they are off, and come back as fresh members.
size_t acks_needed(size_t configured, size_t fenced);

// The newest of this node's states that `need` members acknowledged (each value in `acks`
// is one member's latest ack), or nullopt when fewer than `need` members acked anything.
// need == 0 is answered by the caller (the node's own state, delivered back).
std::optional<uint64_t> renewable_seq(std::vector<uint64_t> acks, size_t need);

// A lease_expired attestation counts if it was sent in the current membership (its view is
// the one its sender's latest state since the change carried) and no state of the node was
// delivered since the change after the one the attester last heard.
bool attestation_valid(std::optional<uint64_t> view, std::optional<uint64_t> sender_view_in_config, uint64_t seq,
                       uint64_t seq_since_change);

// What a completed proof frees: the VIPs that every attester that saw the node's state saw
// it lease (nullopt: that attester saw no state of it since it joined).
std::set<std::string> freed(const std::map<uint32_t, std::optional<std::set<std::string>>>& attestations);

}  // namespace hafront::cluster::lease
