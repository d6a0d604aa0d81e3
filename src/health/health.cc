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

const char* to_string(AdminState s) {
  switch (s) {
    case AdminState::None: return "none";
    case AdminState::Drain: return "drain";
    case AdminState::Maint: return "maint";
  }
  return "?";
}

const char* to_string(ServiceState s) {
  switch (s) {
    case ServiceState::Unknown: return "unknown";
    case ServiceState::Up: return "up";
    case ServiceState::Degraded: return "degraded";
    case ServiceState::Down: return "down";
  }
  return "?";
}

}  // namespace hafront::health
