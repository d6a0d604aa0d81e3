// The placement decision: which node holds each VIP, and which nodes must be fenced.
//
// decide() is a pure function of the replicated view (every member of a partition has the
// same one, because CPG delivers the same messages in the same order) and the policy from
// the config. It reads no clock and does no I/O, so every node computes the same plan, and
// `hafrontctl simulate` and the golden scenarios in tests/scenarios/ call exactly what the
// daemon calls. Carrying the plan out (release before acquire, fencing) is not its job.
//
// Rules, in order:
//  1. A partition without quorum holds nothing and fences nobody.
//  2. A node that left uncleanly (vanished from the membership, or stopped heartbeating
//     while its Corosync stayed) and is not proven down is fenced; the VIPs it held stay
//     down until proof arrives: a confirmed fence, or for a VIP it gated with a lease, a
//     provably expired lease (then the VIP moves and the fence goes on).
//  3. A node may hold a VIP only if it is a member, alive, not in standby, runs the same
//     config as the partition, and its health gate for the VIP passes.
//  4. The current owner keeps its VIP while it may hold it (no failback), unless the VIP
//     asks for failback and a more preferred node may hold it.
//  5. Otherwise the VIP goes to the first of: its preference list, then (with spread) the
//     node holding the fewest VIPs so far (counting first the VIPs that stay or fail back
//     under rule 4), then the lowest node id.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace hafront::cluster {

enum class Departure : uint8_t {
  None,     // a member, or never seen
  Clean,    // announced its leave and released its VIPs first
  Unclean,  // vanished, or its daemon went silent
};

// What the partition knows of one configured node.
struct NodeView {
  uint32_t id = 0;
  std::string name;
  bool member = false;       // in this partition's membership
  bool alive = true;         // its daemon's heartbeats arrive (application liveness)
  bool standby = false;
  bool config_match = true;  // same config digest as this partition
  std::set<std::string> servable;  // VIPs whose health gate passes on it
  Departure departure = Departure::None;
  bool proven_down = false;  // fenced (confirmed) since it was lost
  // The VIPs it gated with a lease that provably ran out since it was lost: free, though
  // the node is still fenced.
  std::set<std::string> lease_freed;
};

struct View {
  bool quorate = false;
  std::vector<NodeView> nodes;                  // every configured node
  std::map<std::string, uint32_t> owners;       // the replicated owner table: VIP -> node id
};

struct VipPolicy {
  std::string name;
  std::vector<uint32_t> prefer;  // node ids, most preferred first
  bool failback = false;
};

struct Policy {
  std::vector<VipPolicy> vips;
  bool spread = false;  // put VIPs without preference on the least loaded node
};

struct VipPlacement {
  std::string vip;
  std::optional<uint32_t> owner;
  bool blocked = false;  // down because proof is missing (not for lack of a node)
  std::string reason;    // one sentence: why this owner, or why none
};

struct Plan {
  bool quorate = false;
  std::vector<VipPlacement> vips;    // in policy order
  std::vector<uint32_t> fence;       // nodes to fence, ascending id
  std::vector<std::string> alerts;   // what an operator must know
};

Plan decide(const View& view, const Policy& policy);

}  // namespace hafront::cluster
