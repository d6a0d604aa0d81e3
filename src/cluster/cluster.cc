#include "cluster/cluster.h"

#include <algorithm>

namespace hafront::cluster {

ClusterView standalone_view(const std::string& node_name, uint32_t node_id) {
  return ClusterView{true, {Member{node_name, node_id}}};
}

std::optional<std::string> resolve_node_name(const config::Config& config,
                                             const std::optional<std::string>& requested,
                                             const std::vector<config::Address>& local_addresses,
                                             const std::string& hostname, std::string& error) {
  const auto& nodes = config.cluster.nodes;
  if (requested) {
    if (config.find_node(*requested)) return requested;
    if (nodes.empty() && config.cluster.mode == config::ClusterMode::Standalone) return requested;
    error = "node '" + *requested + "' is not in cluster.nodes";
    return std::nullopt;
  }
  if (config.cluster.mode == config::ClusterMode::Standalone) {
    if (nodes.size() == 1) return nodes.front().name;
    return hostname.empty() ? std::string("standalone") : hostname;
  }
  std::vector<std::string> matches;
  for (const auto& n : nodes) {
    if (std::find(local_addresses.begin(), local_addresses.end(), n.address) != local_addresses.end())
      matches.push_back(n.name);
  }
  if (matches.size() == 1) return matches.front();
  for (const auto& n : nodes) {
    if (n.name == hostname) return n.name;
  }
  error = matches.empty()
              ? "cannot tell which node this is: no node's address is on this machine and none "
                "is named after the host name; pass --node NAME"
              : "cannot tell which node this is: several nodes' addresses are on this machine; "
                "pass --node NAME";
  return std::nullopt;
}

}  // namespace hafront::cluster
