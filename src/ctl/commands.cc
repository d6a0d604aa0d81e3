#include "ctl/commands.h"

#include <unistd.h>

#include <iostream>

#include "config/config.h"
#include "control/admin_client.h"
#include "control/status.h"

namespace hafront::ctl {
namespace {

constexpr const char* kDefaultConfig = "/etc/hafront/hafront.yaml";

// The admin socket to talk to: --socket, else admin.socket of -c FILE (or of the default
// config file when it exists), else the built-in default.
bool resolve_socket(const Target& t, std::string& socket) {
  if (!t.socket.empty()) {
    socket = t.socket;
    return true;
  }
  std::string path = t.config_path;
  if (path.empty() && ::access(kDefaultConfig, R_OK) == 0) path = kDefaultConfig;
  if (path.empty()) {
    socket = config::AdminOptions{}.socket;
    return true;
  }
  config::LoadOptions opts;
  opts.check_secret_files = false;  // only admin.socket is needed here
  auto r = config::load_file(path, opts);
  if (!r.ok()) {
    for (const auto& d : r.diagnostics) std::cerr << d.format() << "\n";
    std::cerr << "hafrontctl: cannot find the admin socket: " << path
              << " is not valid (use --socket PATH)\n";
    return false;
  }
  socket = r.config->admin.socket;
  return true;
}

}  // namespace

int check(const std::vector<std::string>& files, bool quiet) {
  int rc = 0;
  for (const auto& f : files) {
    auto r = config::load_file(f);
    for (const auto& d : r.diagnostics) std::cerr << d.format() << "\n";
    if (!r.ok()) {
      std::cerr << f << ": " << r.error_count() << " error(s)\n";
      rc = 2;
      continue;
    }
    if (!quiet) {
      const auto& c = *r.config;
      std::cout << f << ": ok — cluster " << c.cluster.name << " (" << config::to_string(c.cluster.mode) << ", "
                << c.cluster.nodes.size() << " nodes), " << c.vips.size() << " VIPs, " << c.checks.size()
                << " checks, " << c.services.size() << " services, " << c.fence_devices.size()
                << " fence devices; sha256 " << c.sha256.substr(0, 12) << "\n";
    }
  }
  return rc;
}

int status(const Target& target, bool json) {
  std::string socket;
  if (!resolve_socket(target, socket)) return 2;
  auto reply = control::call(socket, "status");
  if (!reply.ok) {
    std::cerr << "hafrontctl: " << reply.error << "\n";
    return 1;
  }
  if (json) {
    std::cout << boost::json::serialize(reply.result) << "\n";
  } else {
    std::cout << control::render_text(reply.result);
  }
  return 0;
}

int reload(const Target& target) {
  std::string socket;
  if (!resolve_socket(target, socket)) return 2;
  auto reply = control::call(socket, "reload", {}, std::chrono::seconds(30));
  if (!reply.ok) {
    std::cerr << "hafrontctl: " << reply.error << "\n";
    if (reply.details.is_object()) {
      if (const auto* errors = reply.details.get_object().if_contains("errors"); errors && errors->is_array()) {
        for (const auto& e : errors->get_array()) {
          if (e.is_string()) std::cerr << std::string_view(e.get_string()) << "\n";
        }
        return 2;
      }
    }
    return 1;
  }
  std::cout << "reloaded";
  if (reply.result.is_object()) {
    const auto& o = reply.result.get_object();
    if (const auto* sha = o.if_contains("sha256"); sha && sha->is_string())
      std::cout << " (sha256 " << std::string(sha->get_string()).substr(0, 12) << ")";
    std::cout << "\n";
    if (const auto* changes = o.if_contains("changes"); changes && changes->is_array()) {
      if (changes->get_array().empty()) std::cout << "  no changes to nodes, devices, VIPs, checks or services\n";
      for (const auto& c : changes->get_array()) {
        if (c.is_string()) std::cout << "  " << std::string_view(c.get_string()) << "\n";
      }
    }
  } else {
    std::cout << "\n";
  }
  return 0;
}

}  // namespace hafront::ctl

namespace hafront::ctl {

int standby(const Target& target, const std::string& node, bool on) {
  std::string socket;
  if (!resolve_socket(target, socket)) return 2;
  boost::json::object args;
  if (!node.empty()) args["node"] = node;
  auto reply = control::call(socket, on ? "standby" : "unstandby", args);
  if (!reply.ok) {
    std::cerr << "hafrontctl: " << reply.error << "\n";
    return 1;
  }
  std::string name = "?";
  if (reply.result.is_object()) {
    if (const auto* n = reply.result.get_object().if_contains("node"); n && n->is_string()) name = std::string(n->get_string());
  }
  std::cout << name << (on ? ": standby (holds no VIP)" : ": active (may hold VIPs)") << "\n";
  return 0;
}

}  // namespace hafront::ctl
