// Plain types of backend health as the control plane and the proxy see it.
#pragma once

#include <cstdint>
#include <string>

namespace hafront::health {

// unknown: no verdict yet (no check has completed, or none is configured);
// up / down: by checks; drain: no new connections, existing ones finish; maint: set by an
// operator, ignored by checks.
enum class ServerState : uint8_t { Unknown, Up, Down, Drain, Maint };

struct ServerHealth {
  ServerState state = ServerState::Unknown;
  std::string reason;  // what the last check saw, in a few words
};

const char* to_string(ServerState);

}  // namespace hafront::health
