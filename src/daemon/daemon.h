// hafrontd's wiring: one control thread running a Boost.Asio io_context that owns the
// config, the admin socket, signals and service notifications. Every part of the daemon
// hangs off this object; main() only parses the command line and calls run().
#pragma once

#include <boost/asio.hpp>

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "cluster/cluster_manager.h"
#include "config/config.h"
#include "control/admin_server.h"
#include "control/status.h"
#include "daemon/notify.h"
#include "fence/agent_runner.h"
#include "fence/fencer.h"
#include "fence/metadata.h"
#include "fence/monitor.h"
#include "health/alerts_sink.h"
#include "health/monitor.h"
#include "health/root_cause.h"
#include "proxy/data_plane.h"
#include "vip/lease_ops.h"
#include "vip/net_ops.h"
#include "vip/vip_manager.h"

#include <deque>
#include <map>
#include <set>

namespace hafront::daemon {

struct Options {
  std::string config_path;
  std::optional<std::string> node_name;  // --node; otherwise found from the config
  std::optional<std::string> socket_override;  // --socket; otherwise admin.socket
  bool standby = false;                          // --standby: start holding no VIP
};

// Outcome of a reload attempt, for the log, the admin reply and status.
struct ReloadOutcome {
  bool ok = false;
  std::vector<std::string> errors;   // formatted FILE:LINE:COL: messages, or restart reasons
  std::vector<std::string> changes;  // "services: added x; changed y"
};

class Daemon {
 public:
  Daemon(boost::asio::io_context& io, Options options, std::shared_ptr<const config::Config> config,
         std::string node_name);

  // Opens the admin socket, installs signal handlers, tells systemd it is ready.
  // Returns an error text if the daemon cannot start.
  std::optional<std::string> start();

  // Reads the config file again; applies it if valid, keeps the running one otherwise.
  ReloadOutcome reload();

  // Graceful stop: tells systemd, closes the admin socket, stops the loop.
  void stop();

  control::Status status() const;

 private:
  void install_signals();
  void arm_watchdog();
  void register_commands();
  // Standalone mode: this node wants every VIP unless it is in standby.
  void decide_vips();
  void alert(const std::string& message);
  control::Reply set_standby(const boost::json::object& args, bool standby);
  // Corosync mode: the agent runner, the fence executor and the device monitor.
  void start_fencing(cluster::ClusterManager::Callbacks& cc);
  void learn_agents();
  void check_devices_of(const std::string& agent);

  boost::asio::io_context& io_;
  Options options_;
  std::shared_ptr<const config::Config> config_;
  std::string node_name_;
  std::string socket_path_;
  std::unique_ptr<control::AdminServer> admin_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer watchdog_timer_;
  std::optional<std::chrono::microseconds> watchdog_interval_;
  Notifier notifier_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::string loaded_at_;
  std::string last_reload_at_;
  ReloadOutcome last_reload_{true, {}, {}};
  bool stopping_ = false;
  bool standby_ = false;
  std::unique_ptr<vip::NetOps> net_;
  std::unique_ptr<vip::LeaseOps> lease_ops_;  // nullptr: BPF unavailable, or no VIP may use it
  std::unique_ptr<boost::asio::steady_timer> standalone_lease_timer_;
  std::unique_ptr<vip::VipManager> vips_;
  void renew_standalone_lease();
  void advertise_leased();
  std::unique_ptr<cluster::ClusterManager> cluster_;  // corosync mode only
  std::unique_ptr<fence::AgentRunner> agents_;        // corosync mode only
  std::unique_ptr<fence::Fencer> fencer_;
  std::unique_ptr<fence::DeviceMonitor> monitor_;
  std::map<std::string, fence::AgentMetadata> agent_metadata_;  // by agent name
  std::deque<std::pair<std::string, std::string>> alerts_;  // (time, message), newest last
  // The data plane, and the passive health events its workers report: counted per
  // (service, server) for status and handed to the health monitor.
  void watch_passive_events();
  std::unique_ptr<proxy::DataPlane> data_plane_;
  std::unique_ptr<boost::asio::posix::stream_descriptor> passive_events_;
  std::map<std::pair<std::string, std::string>, std::array<uint64_t, proxy::kPassiveEventKinds>> passive_counts_;

  // Health (doc/health.md): the monitor's view goes to the data plane (states, weights,
  // the writer), to the services' root causes, to the alerts and to each VIP's health gate.
  void start_health();
  void health_changed();
  // Why `vip` fails its health gate on this node; empty when it passes.
  std::string health_gate_block(const config::Vip& vip) const;
  // Tells the cluster whether this node can serve `vip`: its link and its health gate.
  void advertise_servable(const std::string& vip);
  control::Reply set_admin_state(const boost::json::object& args, health::AdminState state);
  std::unique_ptr<health::HealthMonitor> health_;
  std::unique_ptr<health::AlertManager> alerts_out_;
  std::vector<health::ServiceVerdict> verdicts_;
  std::map<std::string, std::pair<bool, std::string>> link_servable_;  // vip -> (servable, why not)
  std::map<std::string, std::string> gate_block_;                      // vip -> why the gate fails
};

// Loads the config, finds this node, runs the daemon until SIGTERM/SIGINT.
// Returns the process exit code (0 clean stop, 1 runtime failure, 2 invalid config).
int run(const Options& options);

}  // namespace hafront::daemon
