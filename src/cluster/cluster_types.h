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
};

// What this node knows of the cluster at one instant.
struct ClusterView {
  bool quorate = false;
  std::vector<Member> members;  // of this node's partition, in node id order
};

}  // namespace hafront::cluster
