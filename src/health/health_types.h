// Plain types of backend health as the control plane and the proxy see it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace hafront::health {

// unknown: no verdict yet (no check has completed);
// up / down: by checks (or by the proxy's passive ejection: down);
// drain: no new connections, existing ones finish; maint: out of service. Both set by an
// operator (hafrontctl drain / maint) or by an agent check, and they win over checks.
enum class ServerState : uint8_t { Unknown, Up, Down, Drain, Maint };

struct ServerHealth {
  ServerState state = ServerState::Unknown;
  std::string reason;  // what the last check saw, in a few words
};

const char* to_string(ServerState);

// What an operator set on a server (hafrontctl drain | maint | ready).
enum class AdminState : uint8_t { None, Drain, Maint };

const char* to_string(AdminState);

// A service as a whole: up when every server it counts is usable, degraded when some are,
// down when none is (single-writer: when there is no writer); unknown until every server
// has a verdict.
enum class ServiceState : uint8_t { Unknown, Up, Degraded, Down };

const char* to_string(ServiceState);

// What the proxy saw about a server, as the monitor counts it (proxy::PassiveEventKind
// maps onto these).
enum class PassiveKind : uint8_t { ConnectFailure, Reset, Http5xx };

// The evidence of one check, small enough for status and alerts.
struct Evidence {
  std::optional<uint16_t> http_status;
  std::string body_excerpt;
  std::optional<int> wsrep_local_state;
  std::string wsrep_state_comment;
  std::string wsrep_cluster_status;
  std::optional<uint64_t> wsrep_last_committed;
  std::optional<int> exit_code;
  int64_t duration_ms = 0;

  bool empty() const {
    return !http_status && body_excerpt.empty() && !wsrep_local_state && wsrep_cluster_status.empty() &&
           !exit_code;
  }
};

// One server as the monitor sees it now: what status shows and what the data plane gets.
struct ServerView {
  std::string service;
  std::string server;
  std::string address;
  ServerState state = ServerState::Unknown;  // in effect (operator, agent, ejection, checks)
  uint32_t weight = 1;                       // in effect (agent N%, single-writer standby 0)
  std::string reason;                        // why it is in that state
  int64_t since_ms = 0;                      // unix ms of the last change of state
  bool checked = false;                      // the service has an active check
  ServerState check_state = ServerState::Unknown;  // the checks' verdict alone
  uint32_t successes = 0;                    // toward rise, while down
  uint32_t failures = 0;                     // toward fall, while up
  std::optional<bool> last_ok;               // the latest check
  std::string last_reason;
  int64_t last_check_ms = 0;
  Evidence evidence;
  AdminState admin = AdminState::None;
  // Passive ejection.
  bool ejected = false;
  std::string ejected_reason;
  int64_t ejected_until_ms = 0;  // unix ms: the re-admission check runs after this
  int64_t backoff_ms = 0;
  uint32_t ejections = 0;        // since the server was last quiet
  // Single-writer services.
  bool writer = false;
};

struct ServiceView {
  std::string name;
  bool single_writer = false;
  std::optional<std::string> writer;  // single-writer: the server taking every connection
  std::string writer_reason;          // why that one, or why none
  std::vector<ServerView> servers;    // in configured order
};

}  // namespace hafront::health
