#include "ctl/commands.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cluster/corosync_conf.h"
#include "cluster/scenario.h"
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

// Sends one command to the daemon. nullopt (exit code 2) when the socket cannot be found;
// a failed reply is printed here, so callers only look at successful ones.
std::optional<control::Reply> ask(const Target& t, std::string_view command, const boost::json::object& args = {},
                                  std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  std::string socket;
  if (!resolve_socket(t, socket)) return std::nullopt;
  control::Reply reply = control::call(socket, command, args, timeout);
  if (!reply.ok) std::cerr << "hafrontctl: " << reply.error << "\n";
  return reply;
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
  auto reply = ask(target, "status");
  if (!reply) return 2;
  if (!reply->ok) return 1;
  std::cout << (json ? boost::json::serialize(reply->result) + "\n" : control::render_text(reply->result));
  return 0;
}

int reload(const Target& target) {
  auto found = ask(target, "reload", {}, std::chrono::seconds(30));
  if (!found) return 2;
  const control::Reply& reply = *found;
  if (!reply.ok) {
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
  boost::json::object args;
  if (!node.empty()) args["node"] = node;
  auto reply = ask(target, on ? "standby" : "unstandby", args);
  if (!reply) return 2;
  if (!reply->ok) return 1;
  std::string name = "?";
  if (reply->result.is_object()) {
    if (const auto* n = reply->result.get_object().if_contains("node"); n && n->is_string()) name = std::string(n->get_string());
  }
  std::cout << name << (on ? ": standby (holds no VIP)" : ": active (may hold VIPs)") << "\n";
  return 0;
}

}  // namespace hafront::ctl

namespace hafront::ctl {
namespace {

std::string expected_path(const std::string& scenario) {
  std::filesystem::path p(scenario);
  p.replace_extension(".expected");
  return p.string();
}

// Loads and decides one scenario; prints its errors and returns nullopt when invalid.
std::optional<std::string> run_scenario(const std::string& file) {
  auto loaded = cluster::load_scenario(file);
  if (!loaded.scenario) {
    for (const auto& d : loaded.errors) std::cerr << d.format() << "\n";
    return std::nullopt;
  }
  cluster::Plan plan = cluster::decide(loaded.scenario->view, loaded.scenario->policy);
  return cluster::render(*loaded.scenario, plan);
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream b;
  b << in.rdbuf();
  return b.str();
}

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  return static_cast<bool>(out);
}

// Line by line: "-expected" / "+got", enough to read what changed.
void print_difference(const std::string& expected, const std::string& got) {
  auto lines = [](const std::string& t) {
    std::vector<std::string> v;
    std::istringstream in(t);
    for (std::string l; std::getline(in, l);) v.push_back(l);
    return v;
  };
  auto a = lines(expected), b = lines(got);
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    const std::string* x = i < a.size() ? &a[i] : nullptr;
    const std::string* y = i < b.size() ? &b[i] : nullptr;
    if (x && y && *x == *y) continue;
    if (x) std::cout << "    -" << *x << "\n";
    if (y) std::cout << "    +" << *y << "\n";
  }
}

}  // namespace

int simulate(const std::vector<std::string>& files, bool update) {
  int rc = 0;
  for (const auto& f : files) {
    auto text = run_scenario(f);
    if (!text) {
      rc = 2;
      continue;
    }
    if (update) {
      if (!write_file(expected_path(f), *text)) {
        std::cerr << "hafrontctl: cannot write " << expected_path(f) << "\n";
        rc = 1;
      } else {
        std::cout << "wrote " << expected_path(f) << "\n";
      }
    } else {
      std::cout << *text;
      if (files.size() > 1) std::cout << "\n";
    }
  }
  return rc;
}

int simulate_check(const std::string& dir, bool update) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".yaml") files.push_back(e.path().string());
  }
  if (ec) {
    std::cerr << "hafrontctl: cannot read " << dir << ": " << ec.message() << "\n";
    return 2;
  }
  std::sort(files.begin(), files.end());
  size_t passed = 0, failed = 0;
  for (const auto& f : files) {
    std::string name = std::filesystem::path(f).stem().string();
    auto got = run_scenario(f);
    if (!got) {
      std::cout << "FAIL " << name << ": invalid scenario\n";
      ++failed;
      continue;
    }
    auto expected = read_file(expected_path(f));
    if (update && (!expected || *expected != *got)) {
      write_file(expected_path(f), *got);
      std::cout << "updated " << name << "\n";
      expected = got;
    }
    if (!expected) {
      std::cout << "FAIL " << name << ": no " << expected_path(f) << " (run with --update and review it)\n";
      ++failed;
    } else if (*expected != *got) {
      std::cout << "FAIL " << name << ": the plan differs from the expectation\n";
      print_difference(*expected, *got);
      ++failed;
    } else {
      std::cout << "pass " << name << "\n";
      ++passed;
    }
  }
  std::cout << files.size() << " scenarios, " << passed << " passed, " << failed << " failed\n";
  return failed == 0 && !files.empty() ? 0 : 1;
}

}  // namespace hafront::ctl

namespace hafront::ctl {

int corosync_conf(const std::string& config_path, bool crypto) {
  auto r = config::load_file(config_path);
  for (const auto& d : r.diagnostics) std::cerr << d.format() << "\n";
  if (!r.ok()) return 2;
  if (r.config->cluster.mode != config::ClusterMode::Corosync) {
    std::cerr << config_path << ": cluster.mode is standalone; corosync.conf is only for mode: corosync\n";
    return 2;
  }
  cluster::CorosyncConfOptions options;
  options.crypto = crypto;
  std::cout << cluster::render_corosync_conf(*r.config, options);
  return 0;
}

}  // namespace hafront::ctl

namespace hafront::ctl {

int fence_confirm(const Target& target, const std::string& node) {
  auto reply = ask(target, "fence-confirm", boost::json::object{{"node", node}});
  if (!reply) return 2;
  if (!reply->ok) return 1;
  std::cout << node << ": confirmed down; the cluster may move its VIPs\n";
  return 0;
}

}  // namespace hafront::ctl

namespace hafront::ctl {

int simulate_config(const std::string& config_path) {
  auto r = config::load_file(config_path);
  for (const auto& d : r.diagnostics) std::cerr << d.format() << "\n";
  if (!r.ok()) return 2;
  cluster::Scenario sc = cluster::scenario_from_config(*r.config);
  std::cout << cluster::render(sc, cluster::decide(sc.view, sc.policy));
  return 0;
}

}  // namespace hafront::ctl
