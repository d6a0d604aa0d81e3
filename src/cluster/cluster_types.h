// Plain types of the cluster view: who is a member, whether this partition is quorate.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hafront::cluster {

struct Member {
  std::string name;
  uint32_t id = 0;
};

// A configured node as this node's cluster table sees it (corosync mode), for status.
struct NodeState {
  std::string name;
  uint32_t id = 0;
  bool member = false;
  bool alive = true;          // not declared silent
  bool standby = false;
  bool config_match = true;   // runs the partition's config
  bool proven_down = false;
  std::string departure;      // "", "clean", "unclean"
  bool lease_expired = false; // every member attested that its lease ran out
};

// One entry of the fence history, as every member learns it from the cluster messages: a
// fence run by the partition's executor, or an operator's confirmation.
struct FenceEvent {
  std::string target;               // node name
  std::string executor;             // the node that ran the agents, or "operator"
  std::string result;               // "off" (fenced and confirmed), "failed", "confirmed" (by hand)
  std::string action = "off";       // what was asked: "off", or "reboot" (off, confirmed, on again)
  int level = 0;                    // the level that fenced it
  std::vector<std::string> devices; // its devices ("pdu-a:3" with a plug)
  std::string reason;               // why it failed, in the agents' words
  int rounds = 0;                   // passes over the topology
  int64_t requested_ms = 0;         // Unix time, milliseconds
  int64_t started_ms = 0;           // after the fence race delay
  int64_t finished_ms = 0;
  int64_t delay_ms = 0;
};

// What this node knows of the cluster at one instant.
struct ClusterView {
  bool quorate = false;
  std::vector<Member> members;  // of this node's partition, in node id order
};

}  // namespace hafront::cluster
