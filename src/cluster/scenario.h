// Golden scenarios for decide(): a readable YAML input (members, quorum, advertised state,
// proof, current owners, policy) and the expected rendering of the plan beside it, as
// Pacemaker's scheduler regression tests do. `hafrontctl simulate` reads, decides, renders
// and compares with these functions; review reads the diff of the .expected files.
//
//   description: the holder crashes; its VIP stays down until it is fenced
//   quorate: true
//   spread: false
//   nodes:
//     - {name: n1, id: 1, member: false, departure: unclean}
//     - {name: n2, id: 2}                        # member, alive, serves every VIP
//     - {name: n3, id: 3, standby: true, servable: [internal]}
//   vips:
//     - {name: internal, owner: n1, prefer: [n1, n2], failback: false}
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cluster/placement.h"
#include "config/config.h"

namespace hafront::cluster {

struct Scenario {
  std::string description;
  View view;
  Policy policy;
};

struct ScenarioLoad {
  std::optional<Scenario> scenario;
  std::vector<config::Diagnostic> errors;  // FILE:LINE:COL: message
};

ScenarioLoad load_scenario(const std::string& path);

// The steady state of a config: every node a quorate member, alive, able to serve every
// VIP, nothing held yet. `hafrontctl simulate -c FILE` shows where the VIPs would go.
Scenario scenario_from_config(const config::Config& config);
ScenarioLoad parse_scenario(const std::string& text, const std::string& name);

// The one-screen summary: the partition, each node, each VIP's placement and reason, the
// fence requests and the alerts. Deterministic: it is what .expected files hold.
std::string render(const Scenario& scenario, const Plan& plan);

}  // namespace hafront::cluster
