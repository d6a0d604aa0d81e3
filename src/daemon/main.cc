// hafrontd: the hafront daemon. Runs in the foreground; see daemon/daemon.h.
#include <CLI/CLI.hpp>

#include "daemon/daemon.h"

int main(int argc, char** argv) {
  CLI::App app{"hafrontd — proxy, VIP holder and cluster member in one daemon"};
  hafront::daemon::Options options;
  options.config_path = "/etc/hafront/hafront.yaml";
  std::string node, socket;
  app.add_option("-c,--config", options.config_path, "config file")->capture_default_str();
  app.add_option("--node", node, "this node's name in cluster.nodes (default: found by address)");
  app.add_option("--socket", socket, "admin socket path (default: admin.socket from the config)");
  app.add_flag("--standby", options.standby, "start in standby: hold no VIP until `hafrontctl unstandby`");
  app.set_version_flag("--version", HAFRONT_VERSION);
  CLI11_PARSE(app, argc, argv);
  if (!node.empty()) options.node_name = node;
  if (!socket.empty()) options.socket_override = socket;
  return hafront::daemon::run(options);
}
