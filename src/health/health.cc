#include "health/health_types.h"

namespace hafront::health {

const char* to_string(ServerState s) {
  switch (s) {
    case ServerState::Unknown: return "unknown";
    case ServerState::Up: return "up";
    case ServerState::Down: return "down";
    case ServerState::Drain: return "drain";
    case ServerState::Maint: return "maint";
  }
  return "?";
}

}  // namespace hafront::health
