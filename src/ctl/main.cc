// hafrontctl: validate configs and talk to a running hafrontd over its admin socket.
#include <CLI/CLI.hpp>
#include <iostream>

#include "ctl/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"hafrontctl — check configs and control hafrontd"};
  app.require_subcommand(1);
  app.fallthrough();  // --socket may come before or after the subcommand
  app.set_version_flag("--version", HAFRONT_VERSION);
  hafront::ctl::Target target;
  app.add_option("--socket", target.socket, "admin socket of the daemon (default: admin.socket of the config)");

  auto* check = app.add_subcommand("check", "validate config files; exit 2 with FILE:LINE:COL: message on errors");
  std::vector<std::string> files;
  bool quiet = false;
  check->add_option("-c,--config,files", files, "config file(s)")->required();
  check->add_flag("-q,--quiet", quiet, "print only errors and warnings");
  bool skip_agents = false;
  check->add_flag("--skip-agents", skip_agents,
                  "do not check fence devices against the installed agents' metadata (a machine without them)");

  auto* status = app.add_subcommand("status", "show members, quorum, VIPs, services and servers");
  bool json = false;
  status->add_option("-c,--config", target.config_path, "config file, to find the admin socket");
  status->add_flag("--json", json, "print the status as JSON");

  auto* reload = app.add_subcommand("reload", "make the daemon re-read its config (like SIGHUP)");
  reload->add_option("-c,--config", target.config_path, "config file, to find the admin socket");

  std::string node;
  auto* standby = app.add_subcommand("standby", "put a node in standby: it releases its VIPs and takes none");
  standby->add_option("node", node, "the node (default: the daemon's own)");
  standby->add_option("-c,--config", target.config_path, "config file, to find the admin socket");
  auto* unstandby = app.add_subcommand("unstandby", "let a node in standby hold VIPs again");
  unstandby->add_option("node", node, "the node (default: the daemon's own)");
  unstandby->add_option("-c,--config", target.config_path, "config file, to find the admin socket");

  auto* fence_confirm = app.add_subcommand("fence-confirm", "confirm by hand that a node is powered off");
  std::string fenced_node;
  fence_confirm->add_option("node", fenced_node, "the node")->required();
  fence_confirm->add_option("-c,--config", target.config_path, "config file, to find the admin socket");

  auto* fence = app.add_subcommand("fence", "fence a node now through its fencing topology (like stonith_admin --fence)");
  std::string fence_node;
  bool no_wait = false;
  fence->add_option("node", fence_node, "the node")->required();
  fence->add_option("-c,--config", target.config_path, "config file, to find the admin socket");
  fence->add_flag("--no-wait", no_wait, "return once the cluster has the request, not when the fence is done");

  auto* fence_history = app.add_subcommand("fence-history", "the fences this node learnt of, oldest first");
  bool history_json = false;
  fence_history->add_option("-c,--config", target.config_path, "config file, to find the admin socket");
  fence_history->add_flag("--json", history_json, "print the history as JSON");

  std::string service_server;
  std::vector<std::pair<CLI::App*, std::string>> server_commands;
  for (const auto& [name, help] : {std::pair<std::string, std::string>{"drain", "no new connections to a server; existing ones finish"},
                                   {"maint", "take a server out of service (checks are ignored until ready)"},
                                   {"ready", "undo drain or maint: the server's checks decide again"}}) {
    auto* sub = app.add_subcommand(name, help);
    sub->add_option("server", service_server, "SERVICE/SERVER")->required();
    sub->add_option("-c,--config", target.config_path, "config file, to find the admin socket");
    server_commands.emplace_back(sub, name);
  }

  auto* simulate = app.add_subcommand("simulate", "run the placement decision on scenario files");
  std::vector<std::string> scenarios;
  std::string check_dir;
  bool update = false;
  simulate->add_option("scenarios", scenarios, "scenario files (YAML)");
  simulate->add_option("--check", check_dir, "compare every scenario in a folder with its .expected");
  simulate->add_flag("--update", update, "write the plans to the .expected files (review the diff)");
  std::string simulate_config;
  simulate->add_option("-c,--config", simulate_config, "show the steady-state plan of a config file");

  auto* corosync = app.add_subcommand("corosync-conf", "print corosync.conf for the cluster in a config file");
  std::string corosync_config;
  bool no_crypto = false;
  corosync->add_option("-c,--config", corosync_config, "hafront config file")->required();
  corosync->add_flag("--no-crypto", no_crypto, "no knet encryption (throw-away test clusters only)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (*check) return hafront::ctl::check(files, quiet, !skip_agents);
  if (*status) return hafront::ctl::status(target, json);
  if (*reload) return hafront::ctl::reload(target);
  if (*simulate) {
    if (!check_dir.empty()) return hafront::ctl::simulate_check(check_dir, update);
    if (!simulate_config.empty()) return hafront::ctl::simulate_config(simulate_config);
    if (scenarios.empty()) {
      std::cerr << "hafrontctl simulate: give scenario files or --check DIR\n";
      return 2;
    }
    return hafront::ctl::simulate(scenarios, update);
  }
  for (const auto& [sub, name] : server_commands) {
    if (*sub) return hafront::ctl::set_server(target, name, service_server);
  }
  if (*fence_confirm) return hafront::ctl::fence_confirm(target, fenced_node);
  if (*fence) return hafront::ctl::fence(target, fence_node, !no_wait);
  if (*fence_history) return hafront::ctl::fence_history(target, history_json);
  if (*corosync) return hafront::ctl::corosync_conf(corosync_config, !no_crypto);
  if (*standby) return hafront::ctl::standby(target, node, true);
  if (*unstandby) return hafront::ctl::standby(target, node, false);
  return 2;
}
