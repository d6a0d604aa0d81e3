// hafrontctl's commands, one function each; main.cc maps the command line onto them.
// Each returns the process exit code: 0 success, 1 the daemon could not do it (or could
// not be reached), 2 invalid input (a bad config file, bad arguments).
#pragma once

#include <string>
#include <vector>

namespace hafront::ctl {

struct Target {
  std::string socket;       // --socket
  std::string config_path;  // -c, used to find admin.socket when --socket is not given
};

// agents: also check fence devices against their agents' metadata.
int check(const std::vector<std::string>& files, bool quiet, bool agents);
int status(const Target& target, bool json);
int reload(const Target& target);
// standby: the node holds no VIP (its VIPs move away); unstandby undoes it.
int standby(const Target& target, const std::string& node, bool on);
// Runs decide() on scenario files: prints each plan, or with `update` writes it to the
// file's .expected; with `check_dir`, compares every scenario of the folder with its
// .expected and ends with "N scenarios, P passed, F failed".
int simulate(const std::vector<std::string>& files, bool update);
// Prints corosync.conf for the cluster described by `config_path` (corosync mode only).
int corosync_conf(const std::string& config_path, bool crypto);
// An operator confirms a node is down (powered off by hand): its VIPs may move.
int fence_confirm(const Target& target, const std::string& node);
// Asks the cluster to fence `node`; with wait, follows the fence history until the outcome
// (exit 0 fenced, 1 failed or no outcome in time).
int fence(const Target& target, const std::string& node, bool wait);
int fence_history(const Target& target, bool json);
int simulate_check(const std::string& dir, bool update);
// An operator's word on one server, "SERVICE/SERVER": drain (no new connections, existing
// ones finish), maint (out of service), ready (back to what its checks say).
int set_server(const Target& target, const std::string& command, const std::string& service_server);
int simulate_config(const std::string& config_path);

}  // namespace hafront::ctl
