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

// What this node knows of the cluster at one instant.
struct ClusterView {
  bool quorate = false;
  std::vector<Member> members;  // of this node's partition, in node id order
};

}  // namespace hafront::cluster
