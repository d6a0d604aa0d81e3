// Health hysteresis: one pure function that turns one check result into the server's next
// check state, and says so only when the state changes (HAProxy's set_server_check_status(),
// Envoy's HealthTransition).
//
// The rules:
//  - unknown (no verdict yet: the server was just configured) takes the first result as it
//    comes: one success makes it up, one failure down. This is HAProxy 3.1's default
//    `init-state up` for the way down and `init-state down` for the way up, so a fresh
//    daemon knows where it stands after one check instead of rise or fall of them, and a
//    server that is dead at start never takes traffic for `fall` intervals;
//  - up goes down after `fall` failures in a row; a success in between starts over;
//  - down goes up after `rise` successes in a row; a failure in between starts over.
// rise and fall of 0 are taken as 1.
#pragma once

#include <cstdint>
#include <optional>

#include "health/health_types.h"

namespace hafront::health {

// The checks' view of one server: Unknown, Up or Down, and the run toward the other state.
struct CheckCounters {
  ServerState state = ServerState::Unknown;
  uint32_t successes = 0;  // in a row while Down (toward rise)
  uint32_t failures = 0;   // in a row while Up (toward fall)

  bool operator==(const CheckCounters&) const = default;
};

struct HysteresisStep {
  CheckCounters next;
  std::optional<ServerState> transition;  // set only when next.state differs from the old one
};

HysteresisStep apply_check(const CheckCounters& current, uint32_t rise, uint32_t fall, bool ok) noexcept;

// Between states: a run toward a transition has started (the monitor then checks at
// fast_interval).
bool changing(const CheckCounters& c) noexcept;

}  // namespace hafront::health
