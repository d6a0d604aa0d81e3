// Client side of the admin protocol, for hafrontctl and tests: one blocking round trip.
#pragma once

#include <chrono>
#include <string>

#include "control/protocol.h"

namespace hafront::control {

// Sends one request to the daemon at `socket_path` and waits for its reply. Connection
// failures and time-outs come back as failure Replies whose error says what happened.
Reply call(const std::string& socket_path, std::string_view command,
           const boost::json::object& args = {},
           std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace hafront::control
