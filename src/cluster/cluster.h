// The cluster part: membership, quorum and (later) the placement decision.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cluster/cluster_types.h"
#include "config/config_types.h"

namespace hafront::cluster {

// Standalone mode: one node, always quorate, member of its own partition.
ClusterView standalone_view(const std::string& node_name, uint32_t node_id);

// Which configured node this daemon is. `requested` (from --node) wins and must exist;
// otherwise the node whose address is one of `local_addresses`; in standalone mode the
// single listed node, or `hostname` when none is listed. Returns the name, or an error
// text in `error`.
std::optional<std::string> resolve_node_name(const config::Config& config,
                                             const std::optional<std::string>& requested,
                                             const std::vector<config::Address>& local_addresses,
                                             const std::string& hostname, std::string& error);

}  // namespace hafront::cluster
