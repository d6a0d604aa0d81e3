#include "ctl/commands.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <variant>

#include "cluster/corosync_conf.h"
#include "cluster/scenario.h"
#include "config/config.h"
#include "fence/agent_runner.h"
#include "fence/metadata.h"
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

namespace {

// Each fence device against its agent's own metadata (`fence_X` with action=metadata):
// required parameters present, unknown ones reported. Returns the number of errors.
int check_fence_devices(const std::string& file, const config::Config& c) {
  std::map<std::string, std::variant<fence::AgentMetadata, std::string>> agents;
  int errors = 0;
  for (const auto& [name, dev] : c.fence_devices) {
    auto found = agents.find(dev.agent);
    if (found == agents.end()) {
      fence::AgentRequest req;
      req.agent = dev.agent;
      req.action = "metadata";
      req.timeout = std::chrono::seconds(20);
      fence::AgentResult r = fence::run_agent_sync(c.cluster.fencing.agent_dirs, req);
      std::variant<fence::AgentMetadata, std::string> md = std::string{};
      if (r.exec == fence::ExecStatus::NotInstalled) {
        md = "agent " + r.reason;
      } else if (!r.ok()) {
        md = "agent " + dev.agent + " did not describe itself (metadata: " + r.describe() + ")";
      } else {
        md = fence::parse_metadata(r.output);
        if (auto* e = std::get_if<std::string>(&md)) md = "agent " + dev.agent + " printed unreadable metadata: " + *e;
      }
      found = agents.emplace(dev.agent, std::move(md)).first;
    }
    std::string where = file + ": fence_devices." + name + ": ";
    if (const auto* e = std::get_if<std::string>(&found->second)) {
      std::cerr << where << *e << "\n";
      ++errors;
      continue;
    }
    fence::Validation v = fence::validate_configured_device(std::get<fence::AgentMetadata>(found->second), c, dev);
    for (const auto& e : v.errors) std::cerr << where << e << "\n";
    for (const auto& w : v.warnings) std::cerr << where << "warning: " << w << "\n";
    errors += static_cast<int>(v.errors.size());
  }
  return errors;
}

}  // namespace

int check(const std::vector<std::string>& files, bool quiet, bool agents) {
  int rc = 0;
  for (const auto& f : files) {
    auto r = config::load_file(f);
    for (const auto& d : r.diagnostics) std::cerr << d.format() << "\n";
    if (!r.ok()) {
      std::cerr << f << ": " << r.error_count() << " error(s)\n";
      rc = 2;
      continue;
    }
    if (agents) {
      if (int n = check_fence_devices(f, *r.config); n > 0) {
        std::cerr << f << ": " << n << " fence device error(s)\n";
        rc = 2;
        continue;
      }
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

namespace {
// The fence history entries for `node` that finished at or after `since_ms`.
std::vector<boost::json::object> outcomes_since(const boost::json::value& reply, const std::string& node, int64_t since_ms) {
  std::vector<boost::json::object> out;
  if (!reply.is_object()) return out;
  const auto* h = reply.get_object().if_contains("history");
  if (!h || !h->is_array()) return out;
  for (const auto& e : h->get_array()) {
    if (!e.is_object()) continue;
    const auto& o = e.get_object();
    const auto* t = o.if_contains("target");
    const auto* f = o.if_contains("finished_ms");
    if (t && t->is_string() && t->get_string() == node && f && f->is_int64() && f->get_int64() >= since_ms) out.push_back(o);
  }
  return out;
}
}  // namespace

int fence(const Target& target, const std::string& node, bool wait) {
  int64_t asked = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count();
  auto reply = ask(target, "fence", boost::json::object{{"node", node}});
  if (!reply) return 2;
  if (!reply->ok) return 1;
  if (!wait) {
    std::cout << node << ": fence requested; see hafrontctl fence-history\n";
    return 0;
  }
  // The partition's executor runs the agents and multicasts the outcome; every member's
  // history gets it. Wait for the longest a fence can take (delays + cluster.fencing.timeout).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(15);
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto h = ask(target, "fence-history");
    if (!h) return 2;
    if (!h->ok) return 1;
    auto found = outcomes_since(h->result, node, asked);
    if (found.empty()) continue;
    boost::json::object wrapped{{"history", boost::json::array(found.begin(), found.end())}};
    std::cout << control::render_fence_history(wrapped);
    const auto* result = found.back().if_contains("result");
    return result && result->is_string() && result->get_string() != "failed" ? 0 : 1;
  }
  std::cerr << "hafrontctl: no outcome for " << node << " yet; see hafrontctl fence-history\n";
  return 1;
}

int set_server(const Target& target, const std::string& command, const std::string& service_server) {
  size_t slash = service_server.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == service_server.size() ||
      service_server.find('/', slash + 1) != std::string::npos) {
    std::cerr << "hafrontctl " << command << ": expected SERVICE/SERVER, got '" << service_server << "'\n";
    return 2;
  }
  boost::json::object args{{"service", service_server.substr(0, slash)}, {"server", service_server.substr(slash + 1)}};
  auto reply = ask(target, command, args);
  if (!reply) return 2;
  if (!reply->ok) return 1;
  std::string state = "?", reason;
  if (reply->result.is_object()) {
    const auto& o = reply->result.get_object();
    if (const auto* x = o.if_contains("state"); x && x->is_string()) state = std::string(x->get_string());
    if (const auto* x = o.if_contains("reason"); x && x->is_string()) reason = std::string(x->get_string());
  }
  std::cout << service_server << ": " << state << (reason.empty() ? "" : " — " + reason) << "\n";
  return 0;
}

int fence_history(const Target& target, bool json) {
  auto reply = ask(target, "fence-history");
  if (!reply) return 2;
  if (!reply->ok) return 1;
  std::cout << (json ? boost::json::serialize(reply->result) + "\n" : control::render_fence_history(reply->result));
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
