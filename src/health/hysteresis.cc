#include "health/hysteresis.h"

#include <algorithm>

namespace hafront::health {

HysteresisStep apply_check(const CheckCounters& current, uint32_t rise, uint32_t fall, bool ok) noexcept {
  rise = std::max<uint32_t>(rise, 1);
  fall = std::max<uint32_t>(fall, 1);
  HysteresisStep out;
  CheckCounters& n = out.next;
  switch (current.state) {
    case ServerState::Up:
      if (ok) {
        n = {ServerState::Up, 0, 0};
      } else if (current.failures + 1 >= fall) {
        n = {ServerState::Down, 0, 0};
      } else {
        n = {ServerState::Up, 0, current.failures + 1};
      }
      break;
    case ServerState::Down:
      if (!ok) {
        n = {ServerState::Down, 0, 0};
      } else if (current.successes + 1 >= rise) {
        n = {ServerState::Up, 0, 0};
      } else {
        n = {ServerState::Down, current.successes + 1, 0};
      }
      break;
    default:
      // Unknown (Drain and Maint are never check states; taken as unknown).
      n = {ok ? ServerState::Up : ServerState::Down, 0, 0};
      break;
  }
  if (n.state != current.state) out.transition = n.state;
  return out;
}

bool changing(const CheckCounters& c) noexcept {
  return (c.state == ServerState::Up && c.failures > 0) || (c.state == ServerState::Down && c.successes > 0);
}

}  // namespace hafront::health
