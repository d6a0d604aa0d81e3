// The status report: what `hafrontctl status` shows and `status --json` prints.
//
// The daemon fills a Status from its parts at the moment of the request; to_json() gives
// the wire form, and render_text() turns that JSON back into the operator's summary (the
// CLI renders from JSON, so text and JSON never disagree).
#pragma once

#include <boost/json.hpp>

#include "cluster/cluster_types.h"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace hafront::control {

// Counters of the data plane (per service and server), summed over its workers since the
// service was configured. Error kinds appear only once counted.
using ErrorCounts = std::vector<std::pair<std::string, uint64_t>>;

// http mode: requests and the final responses they got, by status class; for a server also
// its response time (request sent to first response byte) as a histogram like connect_time_us.
struct HttpCounts {
  uint64_t requests = 0;
  std::array<uint64_t, 5> responses{};  // 1xx (101) .. 5xx
  std::vector<std::pair<uint64_t, uint64_t>> response_time_us{};
  std::optional<uint64_t> response_p50_us{};
  std::optional<uint64_t> response_p99_us{};
};

struct ServerTraffic {
  uint64_t connections = 0;  // successful connects
  uint64_t active = 0;       // connecting or connected now
  uint64_t bytes_to_server = 0;
  uint64_t bytes_from_server = 0;
  ErrorCounts errors;
  // Connect-time histogram: (upper bound in microseconds, count); the last bound is 0 for
  // "slower than every other bound".
  std::vector<std::pair<uint64_t, uint64_t>> connect_time_us;
  std::optional<uint64_t> connect_p50_us;  // upper bound of the bucket holding the median
  std::optional<uint64_t> connect_p99_us;
  std::optional<HttpCounts> http{};  // http mode
};

struct ServiceTraffic {
  uint64_t connections = 0;  // accepted
  uint64_t active = 0;
  uint64_t queued = 0;
  uint64_t bytes_from_clients = 0;
  uint64_t bytes_to_clients = 0;
  ErrorCounts errors;
  std::optional<HttpCounts> http{};  // http mode
};

// A server taken out by passive ejection (doc/health.md).
struct EjectionStatus {
  std::string reason;
  std::string until;   // RFC 3339: the re-admission check runs after this
  int64_t backoff_ms = 0;
  uint32_t ejections = 0;  // since the server was last quiet
};

struct ServerStatus {
  std::string name;
  std::string address;
  std::string state;   // unknown | up | down | drain | maint
  std::string reason;  // why, in a few words
  std::optional<ServerTraffic> traffic{};  // when the data plane runs the service
  ErrorCounts passive{};  // passive health events the data plane reported, by kind
  std::string since{};    // RFC 3339: when the state began
  std::optional<uint32_t> weight{};  // in effect
  std::string role{};     // single-writer: "writer" or "standby"
  std::string admin{};    // "drain" | "maint" when an operator set it
  std::optional<bool> last_ok{};  // the latest active check
  std::string last_check{};       // RFC 3339
  std::string last_reason{};
  // The latest check's evidence, in order: ("http_status", "503"), ("wsrep_local_state",
  // "2 (Donor/Desynced)"), ...
  std::vector<std::pair<std::string, std::string>> evidence{};
  std::optional<EjectionStatus> ejection{};
};

struct ServiceStatus {
  std::string name;
  std::string mode;
  std::string balance;
  std::vector<std::string> listen;
  std::vector<ServerStatus> servers;
  std::string state = "not started";  // running | not started
  std::string note{};                 // why it is not started
  std::optional<ServiceTraffic> traffic{};
  std::string health{};        // unknown | up | degraded | down
  std::string health_reason{}; // its own reason
  std::string root_cause{};    // down: the root services' reasons
  std::vector<std::string> affected{};  // a root: services down because of it
  std::optional<std::string> writer{};  // single-writer
  std::string writer_reason{};
};

struct DataPlaneStatus {
  bool running = false;
  std::string backend;  // io_uring | epoll
  std::string note;     // what the back-end runs with, or why epoll
  uint32_t workers = 0;
  uint64_t passive_events_dropped = 0;  // the event queue was full
  uint64_t access_log_dropped = 0;      // the access log writer fell behind
};

struct VipStatus {
  std::string name;
  std::string address;  // CIDR
  std::string interface;
  std::string driver;                 // in effect: "lease" or "address"
  std::optional<std::string> holder;  // node name, when some node holds it
  std::string state;                  // this node's state for the VIP
  std::string reason;
  std::string driver_note;            // why auto chose address, or why lease cannot hold it
  std::optional<int64_t> lease_ms_left;  // lease driver, while this node gates it: 0 = expired
  std::optional<bool> servable{};        // what this node advertises: link and health gate
  std::string servable_reason{};         // why not
};

struct MemberStatus {
  std::string name;
  uint32_t id = 0;
};

struct FenceDeviceStatus {
  std::string name;
  std::string agent;
  std::string state;   // unknown | ok | failed (the last periodic monitor)
  std::string reason;
  int64_t checked_ms = 0;
  int64_t elapsed_ms = 0;
  std::vector<std::string> protects;  // nodes whose fencing uses it
};

struct ClusterStatus {
  std::string name;
  std::string mode;
  bool quorate = false;
  std::vector<MemberStatus> members;
  std::optional<std::string> coordinator;
  std::vector<cluster::NodeState> nodes;  // corosync mode
  std::vector<std::string> fence;      // nodes the plan wants fenced
  std::vector<std::string> fencing;    // fences this node is running now
  std::vector<FenceDeviceStatus> fence_devices;
  std::optional<cluster::FenceEvent> last_fence;
  std::vector<std::string> plan_alerts;
};

struct ConfigStatus {
  std::string path;
  std::string sha256;
  std::string loaded_at;  // RFC 3339, UTC
  bool last_reload_ok = true;
  std::string last_reload_at;               // empty when no reload was attempted
  std::vector<std::string> last_reload_errors;
};

struct AlertStatus {
  std::string at;  // RFC 3339
  std::string message;
};

// A health problem that is firing (or waiting its group_wait to be sent).
struct HealthAlertStatus {
  std::string id;
  std::string severity;
  std::string summary;
  std::string root_cause;
  std::vector<std::string> affected;
  std::string since;
};

struct AlertSinkStatus {
  std::string name;
  uint64_t sent = 0;
  uint64_t failed = 0;
  uint64_t dropped = 0;
  uint64_t rate_limited = 0;
  std::string last_error;
};

struct Status {
  std::string node;
  bool standby = false;
  std::string version;
  int64_t pid = 0;
  int64_t uptime_seconds = 0;
  ClusterStatus cluster;
  std::vector<VipStatus> vips;
  std::vector<ServiceStatus> services;
  DataPlaneStatus data_plane;
  ConfigStatus config;
  std::vector<AlertStatus> alerts;  // recent alerts, oldest first
  std::vector<HealthAlertStatus> active_alerts{};
  std::vector<AlertSinkStatus> alert_sinks{};
};

boost::json::value to_json(const Status& status);
boost::json::value to_json(const cluster::FenceEvent& event);

// `hafrontctl fence-history`: one line per fence, oldest first.
std::string render_fence_history(const boost::json::value& reply);

// The readable summary. Tolerates missing or ill-typed fields (shows '?').
std::string render_text(const boost::json::value& status);

}  // namespace hafront::control
