// Service health and its root cause. Pure.
//
// A service's own state comes from its servers (service_facts()): up when every server it
// counts is usable (up with a weight above 0; single-writer: there is a writer), degraded
// when some are, down when none is, unknown while no server is usable and some have no
// verdict yet. Servers an operator drained or put in maintenance are not counted, unless
// every server is: then the service is down.
//
// depends_on turns "down" into "down because": a service that is down and has a dependency
// that is down (directly or further along) names as its root cause the deepest down
// services of its dependency graph, the ones that are down with no down dependency of
// their own: "nova: down — root cause: galera: down — no eligible writer: ctrl-0 ...".
// A service that is down while its dependencies are fine is its own root. Several roots
// are possible (a diamond, or two independent failures); each is named once. The loader
// refuses dependency cycles; a cycle here anyway is cut where it closes.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "health/health_types.h"

namespace hafront::health {

struct ServiceFacts {
  std::string name;
  std::vector<std::string> depends_on;
  ServiceState state = ServiceState::Unknown;
  std::string reason;  // its own: "no usable server: ctrl-0 down (connect refused); ..."
};

// The state and own reason of a service from its servers.
ServiceFacts service_facts(const ServiceView& view, const std::vector<std::string>& depends_on);

struct ServiceVerdict {
  std::string name;
  ServiceState state = ServiceState::Unknown;
  std::string reason;               // its own reason
  std::vector<std::string> roots;   // down: the root services (itself when it is the root)
  std::string root_cause;           // down: the roots' own reasons, "galera: down — ..."
  std::vector<std::string> affected;  // a root: the down services that name it as a root
  // The one line for status and logs: "keystone: down — root cause: galera: down — ...".
  std::string text;
};

// One verdict per service, in the given order.
std::vector<ServiceVerdict> find_root_causes(std::span<const ServiceFacts> services);

}  // namespace hafront::health
