// The status report: what `hafrontctl status` shows and `status --json` prints.
//
// The daemon fills a Status from its parts at the moment of the request; to_json() gives
// the wire form, and render_text() turns that JSON back into the operator's summary (the
// CLI renders from JSON, so text and JSON never disagree).
#pragma once

#include <boost/json.hpp>

#include "cluster/cluster_types.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace hafront::control {

struct ServerStatus {
  std::string name;
  std::string address;
  std::string state;   // unknown | up | down | drain | maint
  std::string reason;  // why, in a few words
};

struct ServiceStatus {
  std::string name;
  std::string mode;
  std::string balance;
  std::vector<std::string> listen;
  std::vector<ServerStatus> servers;
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

struct Status {
  std::string node;
  bool standby = false;
  std::string version;
  int64_t pid = 0;
  int64_t uptime_seconds = 0;
  ClusterStatus cluster;
  std::vector<VipStatus> vips;
  std::vector<ServiceStatus> services;
  ConfigStatus config;
  std::vector<AlertStatus> alerts;  // recent alerts, oldest first
};

boost::json::value to_json(const Status& status);
boost::json::value to_json(const cluster::FenceEvent& event);

// `hafrontctl fence-history`: one line per fence, oldest first.
std::string render_fence_history(const boost::json::value& reply);

// The readable summary. Tolerates missing or ill-typed fields (shows '?').
std::string render_text(const boost::json::value& status);

}  // namespace hafront::control
