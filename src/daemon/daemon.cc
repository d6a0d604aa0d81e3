#include "daemon/daemon.h"

#include <ifaddrs.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <variant>
#include <cstring>
#include <ctime>

#include "cluster/cluster.h"
#include "common/log.h"
#include "health/alerts.h"
#include "health/health_types.h"
#include "health/probe.h"
#include "vip/lease_gate.h"
#include "vip/vip_types.h"

namespace hafront::daemon {
namespace asio = boost::asio;

namespace {

std::string now_rfc3339() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  std::tm tm{};
  gmtime_r(&ts.tv_sec, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[80];
  std::snprintf(out, sizeof out, "%s.%03ldZ", buf, ts.tv_nsec / 1'000'000);
  return out;
}

std::vector<config::Address> local_addresses() {
  std::vector<config::Address> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr) continue;
    config::Address a;
    if (i->ifa_addr->sa_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
      std::memcpy(a.bytes.data(), &sin->sin_addr, 4);
      a.family = config::Address::Family::V4;
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
      std::memcpy(a.bytes.data(), &sin6->sin6_addr, 16);
      a.family = config::Address::Family::V6;
    } else {
      continue;
    }
    out.push_back(a);
  }
  freeifaddrs(list);
  return out;
}

std::string hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return {};
  return buf;
}

control::ErrorCounts error_counts(const std::array<uint64_t, proxy::kErrorKinds>& errors) {
  control::ErrorCounts out;
  for (size_t k = 0; k < errors.size(); ++k) {
    if (errors[k] > 0) out.emplace_back(proxy::to_string(static_cast<proxy::ErrorKind>(k)), errors[k]);
  }
  return out;
}

control::ServerTraffic server_traffic(const proxy::ServerTotals& totals) {
  control::ServerTraffic t;
  t.connections = totals.connections;
  t.active = totals.active;
  t.bytes_to_server = totals.bytes_to_server;
  t.bytes_from_server = totals.bytes_from_server;
  t.errors = error_counts(totals.errors);
  for (size_t k = 0; k < totals.connect_time.size(); ++k) {
    uint64_t bound = k < proxy::kConnectBucketsUs.size() ? proxy::kConnectBucketsUs[k] : 0;
    t.connect_time_us.emplace_back(bound, totals.connect_time[k]);
  }
  t.connect_p50_us = proxy::connect_percentile(totals, 50);
  t.connect_p99_us = proxy::connect_percentile(totals, 99);
  return t;
}

// http services: requests, responses by class, and for servers the response times.
control::HttpCounts http_counts(uint64_t requests, const std::array<uint64_t, proxy::kStatusClasses>& responses,
                                const std::array<uint64_t, proxy::kConnectBuckets>* response_time) {
  control::HttpCounts h;
  h.requests = requests;
  for (size_t k = 0; k < responses.size() && k < h.responses.size(); ++k) h.responses[k] = responses[k];
  if (response_time) {
    for (size_t k = 0; k < response_time->size(); ++k) {
      uint64_t bound = k < proxy::kConnectBucketsUs.size() ? proxy::kConnectBucketsUs[k] : 0;
      h.response_time_us.emplace_back(bound, (*response_time)[k]);
    }
    h.response_p50_us = proxy::bucket_percentile(*response_time, 50);
    h.response_p99_us = proxy::bucket_percentile(*response_time, 99);
  }
  return h;
}

void log_diagnostics(const std::vector<config::Diagnostic>& diags) {
  for (const auto& d : diags) {
    if (d.severity == config::Diagnostic::Severity::Error) {
      spdlog::error("{}", d.format());
    } else {
      spdlog::warn("{}", d.format());
    }
  }
}

}  // namespace

Daemon::Daemon(asio::io_context& io, Options options, std::shared_ptr<const config::Config> config,
               std::string node_name)
    : io_(io),
      options_(std::move(options)),
      config_(std::move(config)),
      node_name_(std::move(node_name)),
      signals_(io),
      watchdog_timer_(io),
      loaded_at_(now_rfc3339()) {
  socket_path_ = options_.socket_override.value_or(config_->admin.socket);
  standby_ = options_.standby;
}

std::optional<std::string> Daemon::start() {
  std::string net_error;
  net_ = vip::make_linux_net_ops(io_, net_error);
  if (!net_) return "cannot manage VIP addresses: " + net_error;
  std::string lease_error;
  bool may_lease = std::any_of(config_->vips.begin(), config_->vips.end(),
                               [](const config::Vip& v) { return v.driver != config::VipDriver::Address; });
  if (may_lease) {
    lease_ops_ = vip::make_linux_lease_ops(lease_error);
    if (!lease_ops_) spdlog::warn("the lease driver is unavailable: {}", lease_error);
  } else {
    lease_error = "not loaded: no VIP used driver lease or auto at start";
  }
  if (config_->cluster.mode == config::ClusterMode::Corosync) {
    const config::Node* self = config_->find_node(node_name_);
    cluster::ClusterManager::Callbacks cc;
    cc.want = [this](const std::string& vip, bool hold) { vips_->set_wanted(vip, hold); };
    cc.alert = [this](const std::string& m) { alert(m); };
    cc.lease = [this](uint64_t expiry_ns) { vips_->set_lease(expiry_ns); };
    cc.standby_requested = [this](bool on) {
      standby_ = on;
      decide_vips();
    };
    start_fencing(cc);
    cluster_ = std::make_unique<cluster::ClusterManager>(io_, config_, self->id, cc);
  }
  vip::VipManager::Callbacks callbacks;
  callbacks.alert = [this](const std::string& m) { alert(m); };
  callbacks.state_changed = [this](const std::string& vip, vip::VipState state) {
    if (cluster_) cluster_->set_holding(vip, state != vip::VipState::Released);
  };
  callbacks.servable_changed = [this](const std::string& vip, bool servable, const std::string& why) {
    link_servable_[vip] = {servable, why};
    advertise_servable(vip);
  };
  vips_ = std::make_unique<vip::VipManager>(io_, *net_, callbacks, lease_ops_.get(), lease_error);
  vips_->start();  // removes addresses a crashed run left behind
  admin_ = std::make_unique<control::AdminServer>(io_, socket_path_);
  if (auto err = admin_->listen()) return err;
  // Listeners come up before any VIP is taken: a node answers for a VIP only with its
  // services listening.
  try {
    data_plane_ = std::make_unique<proxy::DataPlane>();
  } catch (const std::exception& e) {
    return std::string("data plane: ") + e.what();  // no eventfd or thread could be made
  }
  if (auto err = data_plane_->start(*config_)) return "data plane: " + *err;
  watch_passive_events();
  start_health();
  vips_->configure(config_->vips);
  advertise_leased();
  if (!cluster_) renew_standalone_lease();
  decide_vips();
  if (cluster_) cluster_->start();
  register_commands();
  install_signals();
  arm_watchdog();
  spdlog::info("hafrontd {} started: node {}, cluster {} ({} mode), {} VIPs, {} services, admin socket {}",
               HAFRONT_VERSION, node_name_, config_->cluster.name, config::to_string(config_->cluster.mode),
               config_->vips.size(), config_->services.size(), socket_path_);
  notifier_.status("running");
  notifier_.ready();
  return std::nullopt;
}

void Daemon::start_fencing(cluster::ClusterManager::Callbacks& cc) {
  agents_ = std::make_unique<fence::AgentRunner>(io_, config_->cluster.fencing.agent_dirs);
  fencer_ = std::make_unique<fence::Fencer>(io_, *agents_);
  fencer_->set_config(config_);
  fencer_->set_alert([this](const std::string& m) { alert(m); });
  fencer_->set_status_support([this](const std::string& agent) {
    auto it = agent_metadata_.find(agent);
    return it == agent_metadata_.end() || it->second.supports("status");
  });
  monitor_ = std::make_unique<fence::DeviceMonitor>(io_, *agents_, [this](const std::string& m) { alert(m); });
  auto to_ms = [](std::chrono::system_clock::time_point t) {
    return t == std::chrono::system_clock::time_point{}
               ? int64_t{0}
               : std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  };
  cc.fence_start = [this, to_ms](const std::string& node, std::chrono::milliseconds delay) {
    return fencer_->fence(node, delay, [this, to_ms](const fence::FenceOutcome& o) {
      cluster::FenceEvent e;
      e.target = o.node;
      e.executor = node_name_;
      e.result = o.success ? "off" : "failed";
      e.action = config_->cluster.fencing.action == config::FenceAction::Reboot ? "reboot" : "off";
      e.level = o.level;
      e.devices = o.devices;
      e.reason = o.reason;
      e.rounds = o.rounds;
      e.requested_ms = to_ms(o.requested);
      e.started_ms = to_ms(o.started);
      e.finished_ms = to_ms(o.finished);
      e.delay_ms = o.delay.count();
      if (cluster_) cluster_->fence_finished(e);
    });
  };
  cc.fence_cancel = [this](const std::string& node) { fencer_->cancel(node); };
  monitor_->configure(config_);
  learn_agents();
}

// Each configured agent's own metadata: which actions it has (a `status` confirmation is
// asked only of agents that have it), and the same device check as `hafrontctl check`, for
// a config that was never checked: an operator learns now, not when a node must be fenced.
void Daemon::learn_agents() {
  std::set<std::string> agents;
  for (const auto& [name, dev] : config_->fence_devices) agents.insert(dev.agent);
  for (const auto& agent : agents) {
    if (agent_metadata_.count(agent)) {
      check_devices_of(agent);
      continue;
    }
    fence::AgentRequest req;
    req.agent = agent;
    req.action = "metadata";
    req.timeout = std::chrono::seconds(20);
    agents_->run(req, [this, agent](fence::AgentResult r) {
      if (!r.ok()) {
        spdlog::error("fence agent {}: no metadata ({})", agent, r.describe());
        alert("fence agent " + agent + " cannot describe itself (" + r.describe() + "); devices using it may not work");
        return;
      }
      auto md = fence::parse_metadata(r.output);
      if (auto* err = std::get_if<std::string>(&md)) {
        spdlog::warn("fence agent {}: unreadable metadata ({}); assuming it can confirm with status", agent, *err);
        return;
      }
      agent_metadata_[agent] = std::get<fence::AgentMetadata>(std::move(md));
      check_devices_of(agent);
    });
  }
}

void Daemon::check_devices_of(const std::string& agent) {
  const fence::AgentMetadata& metadata = agent_metadata_.at(agent);
  for (const auto& [name, dev] : config_->fence_devices) {
    if (dev.agent != agent) continue;
    for (const auto& e : fence::validate_configured_device(metadata, *config_, dev).errors) {
      spdlog::error("fence device {}: {}", name, e);
      alert("fence device " + name + ": " + e);
    }
  }
}

void Daemon::watch_passive_events() {
  if (!passive_events_) {
    int fd = ::dup(data_plane_->events_fd());
    if (fd < 0) {
      spdlog::error("cannot watch the data plane's passive health events: {}", std::strerror(errno));
      return;
    }
    passive_events_ = std::make_unique<asio::posix::stream_descriptor>(io_, fd);
  }
  passive_events_->async_wait(asio::posix::stream_descriptor::wait_read, [this](boost::system::error_code ec) {
    if (ec || stopping_) return;
    std::vector<proxy::PassiveEvent> events;
    data_plane_->drain_events([this, &events](const proxy::PassiveEvent& e) {
      const proxy::ServerName* name = data_plane_->server_name(e.server_id);
      if (!name) return;
      auto& counts = passive_counts_[{name->service, name->server}];
      ++counts[static_cast<size_t>(e.kind)];
      events.push_back(e);
    });
    // To the monitor, with each server's successful connects (and non-5xx answers) so far: a
    // failure after a success is not "in a row". Counters are read once per service and batch.
    std::map<std::string, std::optional<proxy::ServiceView>> views;
    for (const proxy::PassiveEvent& e : events) {
      const proxy::ServerName* name = data_plane_->server_name(e.server_id);
      if (!name || !health_) continue;
      auto [it, fresh] = views.try_emplace(name->service);
      if (fresh) it->second = data_plane_->service(name->service);
      uint64_t connects = 0, answers = 0;
      if (it->second) {
        for (const auto& srv : it->second->servers) {
          if (srv.name != name->server) continue;
          connects = srv.totals.connections;
          for (size_t c = 0; c + 1 < srv.totals.responses.size(); ++c) answers += srv.totals.responses[c];  // 1xx-4xx
        }
      }
      health::PassiveKind kind = health::PassiveKind::ConnectFailure;
      std::string detail;
      switch (e.kind) {
        case proxy::PassiveEventKind::ConnectRefused: detail = "connect refused"; break;
        case proxy::PassiveEventKind::ConnectTimeout: detail = "connect time-out"; break;
        case proxy::PassiveEventKind::ConnectError:
          detail = "connect error" + (e.error ? " (" + std::string(std::strerror(std::abs(e.error))) + ")" : std::string());
          break;
        case proxy::PassiveEventKind::Reset:
          kind = health::PassiveKind::Reset;
          detail = "connection reset";
          break;
        case proxy::PassiveEventKind::Http5xx:
          kind = health::PassiveKind::Http5xx;
          detail = "HTTP 5xx";
          break;
      }
      health_->on_passive(name->service, name->server, kind, detail,
                          kind == health::PassiveKind::Http5xx ? answers : connects);
    }
    watch_passive_events();
  });
}

void Daemon::start_health() {
  alerts_out_ = std::make_unique<health::AlertManager>(io_, node_name_, config_->cluster.name);
  alerts_out_->configure(config_->alerts);
  alerts_out_->set_on_alert([this](const health::Alert& a) {
    if (a.id == "event") return;  // already in the list (alert())
    std::string text = a.summary;
    if (a.firing && !a.root_cause.empty()) text += " — " + a.root_cause;
    if (!a.affected.empty()) {
      text += "; affected:";
      for (size_t i = 0; i < a.affected.size(); ++i) text += (i ? ", " : " ") + a.affected[i];
    }
    spdlog::log(a.firing ? (a.severity == health::AlertSeverity::Critical ? spdlog::level::err : spdlog::level::warn)
                         : spdlog::level::info,
                "alert: {}", text);
    alerts_.emplace_back(now_rfc3339(), text);
    while (alerts_.size() > 20) alerts_.pop_front();
  });
  health::HealthMonitor::Options options;
  options.probe = [](asio::io_context& io, const config::Check& check, const health::ProbeTarget& target,
                     health::ProbeDone done) { return health::start_probe(io, check, target, std::move(done)); };
  options.seed = static_cast<uint64_t>(getpid());
  health_ = std::make_unique<health::HealthMonitor>(io_, options);
  health_->set_on_change([this] { health_changed(); });
  health_->configure(config_);
  health_changed();
}

namespace {
proxy::ServerState to_proxy(health::ServerState s) {
  switch (s) {
    case health::ServerState::Unknown:  // no verdict yet: served, as HAProxy's init-state up
    case health::ServerState::Up: return proxy::ServerState::Up;
    case health::ServerState::Down: return proxy::ServerState::Down;
    case health::ServerState::Drain: return proxy::ServerState::Drain;
    case health::ServerState::Maint: return proxy::ServerState::Maint;
  }
  return proxy::ServerState::Up;
}
}  // namespace

void Daemon::health_changed() {
  if (!health_ || stopping_) return;
  std::vector<health::ServiceView> view = health_->view();
  if (data_plane_) {
    proxy::HealthStates states;
    for (const auto& svc : view) {
      for (const auto& srv : svc.servers) states[svc.name][srv.server] = {to_proxy(srv.state), srv.weight};
    }
    data_plane_->set_server_states(std::move(states));
  }
  std::vector<health::ServiceFacts> facts;
  for (const auto& svc : view) {
    const config::Service* c = config_->find_service(svc.name);
    facts.push_back(health::service_facts(svc, c ? c->depends_on : std::vector<std::string>{}));
  }
  std::map<std::string, health::ServiceState> before;
  for (const auto& v : verdicts_) before[v.name] = v.state;
  verdicts_ = health::find_root_causes(facts);
  for (const auto& v : verdicts_) {
    auto it = before.find(v.name);
    if (it != before.end() && it->second == v.state) continue;
    if (v.state == health::ServiceState::Unknown && it == before.end()) continue;
    spdlog::log(v.state == health::ServiceState::Down       ? spdlog::level::err
                : v.state == health::ServiceState::Degraded ? spdlog::level::warn
                                                            : spdlog::level::info,
                "service {}", v.text);
  }
  if (alerts_out_) alerts_out_->update(health::problems_from(verdicts_, view));
  for (const auto& vip : config_->vips) {
    std::string why = health_gate_block(vip);
    auto& block = gate_block_[vip.name];
    if (why != block) {
      if (why.empty()) {
        spdlog::info("VIP {}: health gate passes", vip.name);
      } else {
        spdlog::warn("VIP {}: health gate fails: {}", vip.name, why);
      }
    }
    block = why;
    advertise_servable(vip.name);
  }
}

std::string Daemon::health_gate_block(const config::Vip& vip) const {
  std::vector<std::string> failing;
  size_t on_vip = 0, serving = 0;
  for (const auto& svc : config_->services) {
    bool listens = std::any_of(svc.listen.begin(), svc.listen.end(),
                               [&](const config::Listen& l) { return l.vip && *l.vip == vip.name; });
    if (!listens) continue;
    ++on_vip;
    std::string why;
    if (!data_plane_ || !data_plane_->running() || !data_plane_->service(svc.name)) {
      why = svc.name + " is not listening";
    } else if (vip.health_gate != config::HealthGate::None) {
      auto v = std::find_if(verdicts_.begin(), verdicts_.end(), [&](const auto& x) { return x.name == svc.name; });
      if (v == verdicts_.end() || v->state == health::ServiceState::Unknown) {
        why = svc.name + " has no checked server yet";
      } else if (v->state == health::ServiceState::Down) {
        bool own = v->roots.size() == 1 && v->roots.front() == svc.name;
        why = svc.name + " has no usable server" + (own ? " (" + v->reason + ")" : " (root cause: " + v->root_cause + ")");
      }
    }
    if (why.empty()) {
      ++serving;
    } else {
      failing.push_back(why);
    }
  }
  if (on_vip == 0) return "";
  if (vip.health_gate == config::HealthGate::Any && serving > 0) return "";
  std::string out;
  for (const auto& f : failing) out += (out.empty() ? "" : "; ") + f;
  if (vip.health_gate == config::HealthGate::Any && !out.empty()) out = "no service can serve: " + out;
  return out;
}

void Daemon::advertise_servable(const std::string& vip) {
  auto link = link_servable_.find(vip);
  bool servable = link != link_servable_.end() && link->second.first;
  auto gate = gate_block_.find(vip);
  if (gate != gate_block_.end() && !gate->second.empty()) servable = false;
  // The cluster ignores a repeat; standalone mode holds every VIP anyway (status says why
  // it would not be offered).
  if (cluster_) cluster_->set_servable(vip, servable);
}

control::Reply Daemon::set_admin_state(const boost::json::object& args, health::AdminState state) {
  const auto* service = args.if_contains("service");
  const auto* server = args.if_contains("server");
  if (!service || !service->is_string() || !server || !server->is_string())
    return control::Reply::failure("expected {\"service\": NAME, \"server\": NAME}");
  if (!health_) return control::Reply::failure("the health monitor is not running");
  std::string svc(service->get_string()), srv(server->get_string());
  if (std::string err = health_->set_admin(svc, srv, state); !err.empty()) return control::Reply::failure(err);
  health_changed();  // at once: the caller expects the data plane to have it on return
  std::string shown = state == health::AdminState::None ? "ready" : health::to_string(state);
  for (const auto& v : health_->view()) {
    for (const auto& s2 : v.servers) {
      if (v.name == svc && s2.server == srv) {
        return control::Reply::success(boost::json::object{{"service", svc}, {"server", srv}, {"admin", shown},
                                                           {"state", health::to_string(s2.state)},
                                                           {"reason", s2.reason}});
      }
    }
  }
  return control::Reply::success(boost::json::object{{"service", svc}, {"server", srv}, {"admin", shown}});
}

void Daemon::advertise_leased() {
  if (!cluster_) return;
  for (const auto& v : vips_->view()) cluster_->set_leased(v.name, v.driver == "lease");
}

// Standalone mode has no cluster to prove anything to: the lease only makes a hung daemon's
// VIPs go silent, like a crashed one's. Renewed by the control loop itself.
void Daemon::renew_standalone_lease() {
  if (!lease_ops_) return;
  auto lease = config_->cluster.timings.lease;
  vips_->set_lease(lease_ops_->now_ns() + static_cast<uint64_t>(lease.count()) * 1'000'000ULL);
  if (!standalone_lease_timer_) standalone_lease_timer_ = std::make_unique<asio::steady_timer>(io_);
  standalone_lease_timer_->expires_after(lease / 3);
  standalone_lease_timer_->async_wait([this](boost::system::error_code ec) {
    if (!ec) renew_standalone_lease();
  });
}

void Daemon::decide_vips() {
  if (cluster_) {
    cluster_->set_standby(standby_);  // the cluster decides; this node advertises
    return;
  }
  for (const auto& v : config_->vips) vips_->set_wanted(v.name, !standby_);
}

void Daemon::alert(const std::string& message) {
  alerts_.emplace_back(now_rfc3339(), message);
  while (alerts_.size() > 20) alerts_.pop_front();
  if (alerts_out_) alerts_out_->event(message);
}

control::Reply Daemon::set_standby(const boost::json::object& args, bool standby) {
  std::string target = node_name_;
  if (const auto* node = args.if_contains("node")) {
    if (!node->is_string()) return control::Reply::failure("\"node\" must be a node name");
    target = std::string(node->get_string());
  }
  if (target != node_name_) {
    if (!cluster_) return control::Reply::failure("standalone mode: only this node (" + node_name_ + ") can be put in standby");
    // In a cluster the request travels to that node, which applies it to itself.
    std::string err = cluster_->request_standby(target, standby);
    if (!err.empty()) return control::Reply::failure(err);
    return control::Reply::success(boost::json::object{{"node", target}, {"standby", standby}, {"requested", true}});
  }
  if (standby_ != standby) {
    standby_ = standby;
    spdlog::info("{}: {}", node_name_, standby ? "standby: releasing every VIP" : "unstandby: taking VIPs again");
    decide_vips();
  }
  return control::Reply::success(boost::json::object{{"node", node_name_}, {"standby", standby_}});
}

void Daemon::register_commands() {
  admin_->add_command("standby", [this](const boost::json::object& args) { return set_standby(args, true); });
  admin_->add_command("fence-confirm", [this](const boost::json::object& args) {
    if (!cluster_) return control::Reply::failure("fence-confirm needs corosync mode");
    const auto* node = args.if_contains("node");
    if (!node || !node->is_string()) return control::Reply::failure("fence-confirm needs a node name");
    std::string err = cluster_->fence_confirm(std::string(node->get_string()));
    if (!err.empty()) return control::Reply::failure(err);
    return control::Reply::success(boost::json::object{{"node", node->get_string()}, {"confirmed", true}});
  });
  admin_->add_command("fence", [this](const boost::json::object& args) {
    if (!cluster_) return control::Reply::failure("fence needs corosync mode");
    const auto* node = args.if_contains("node");
    if (!node || !node->is_string()) return control::Reply::failure("fence needs a node name");
    std::string err = cluster_->request_fence(std::string(node->get_string()));
    if (!err.empty()) return control::Reply::failure(err);
    return control::Reply::success(boost::json::object{{"node", node->get_string()}, {"requested", true}});
  });
  admin_->add_command("fence-history", [this](const boost::json::object&) {
    boost::json::array out;
    if (cluster_) {
      for (const auto& e : cluster_->fence_history()) out.push_back(control::to_json(e));
    }
    return control::Reply::success(boost::json::object{{"history", std::move(out)}});
  });
  admin_->add_command("unstandby", [this](const boost::json::object& args) { return set_standby(args, false); });
  admin_->add_command("drain", [this](const boost::json::object& args) {
    return set_admin_state(args, health::AdminState::Drain);
  });
  admin_->add_command("maint", [this](const boost::json::object& args) {
    return set_admin_state(args, health::AdminState::Maint);
  });
  admin_->add_command("ready", [this](const boost::json::object& args) {
    return set_admin_state(args, health::AdminState::None);
  });
  admin_->add_command("ping", [this](const boost::json::object&) {
    return control::Reply::success(boost::json::object{{"node", node_name_}, {"pid", static_cast<int64_t>(getpid())}});
  });
  admin_->add_command("status", [this](const boost::json::object&) {
    return control::Reply::success(control::to_json(status()));
  });
  admin_->add_command("reload", [this](const boost::json::object&) {
    ReloadOutcome r = reload();
    boost::json::array errors, changes;
    for (const auto& e : r.errors) errors.push_back(boost::json::value(e));
    for (const auto& c : r.changes) changes.push_back(boost::json::value(c));
    if (!r.ok) {
      return control::Reply::failure("the new config was rejected; the running config stays in force",
                                     boost::json::object{{"errors", std::move(errors)}});
    }
    return control::Reply::success(boost::json::object{{"sha256", config_->sha256}, {"changes", std::move(changes)}});
  });
}

void Daemon::install_signals() {
  signals_.add(SIGTERM);
  signals_.add(SIGINT);
  signals_.add(SIGHUP);
  signals_.async_wait([this](boost::system::error_code ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      spdlog::info("SIGHUP: reloading {}", options_.config_path);
      reload();
      install_signals();
      return;
    }
    spdlog::info("{}: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    stop();
  });
}

void Daemon::arm_watchdog() {
  watchdog_interval_ = Notifier::watchdog_interval();
  if (!watchdog_interval_) return;
  // The ping comes from the control loop itself: a loop that hangs stops pinging, and
  // systemd restarts the daemon.
  watchdog_timer_.expires_after(*watchdog_interval_);
  watchdog_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopping_) return;
    notifier_.watchdog();
    arm_watchdog();
  });
}

ReloadOutcome Daemon::reload() {
  notifier_.reloading();
  ReloadOutcome out;
  last_reload_at_ = now_rfc3339();
  config::LoadResult r = config::load_file(options_.config_path);
  log_diagnostics(r.diagnostics);
  if (!r.ok()) {
    for (const auto& d : r.diagnostics) {
      if (d.severity == config::Diagnostic::Severity::Error) out.errors.push_back(d.format());
    }
    spdlog::error("reload rejected: {} error(s) in {}; still running config {}", out.errors.size(),
                  options_.config_path, config_->sha256.substr(0, 12));
  } else if (auto why = config::restart_required(*config_, *r.config, node_name_); !why.empty()) {
    for (auto& w : why) out.errors.push_back(options_.config_path + ": needs a restart, not a reload: " + w);
    spdlog::error("reload rejected: {}; still running config {}", out.errors.front(),
                  config_->sha256.substr(0, 12));
  } else if (std::vector<std::string> warnings;
             auto err = data_plane_ ? data_plane_->apply(*r.config, warnings) : std::nullopt) {
    // Nothing was applied: the data plane opens new listeners before it changes anything.
    out.errors.push_back(options_.config_path + ": " + *err);
    spdlog::error("reload rejected: {}; still running config {}", out.errors.front(), config_->sha256.substr(0, 12));
  } else {
    out.ok = true;
    for (const auto& w : warnings) {
      spdlog::warn("reload: {}", w);
      alert(w);
    }
    for (const auto& d : config::diff(*config_, *r.config)) {
      std::string line = d.section + ":";
      auto add = [&](const char* what, const std::vector<std::string>& names) {
        if (names.empty()) return;
        line += std::string(" ") + what;
        for (size_t i = 0; i < names.size(); ++i) line += (i ? ", " : " ") + names[i];
        line += ";";
      };
      add("added", d.added);
      add("removed", d.removed);
      add("changed", d.changed);
      line.pop_back();
      out.changes.push_back(line);
    }
    config_ = r.config;
    loaded_at_ = now_rfc3339();
    vips_->configure(config_->vips);
    advertise_leased();
    if (cluster_) cluster_->reconfigure(config_);
    if (agents_) {
      agents_->set_agent_dirs(config_->cluster.fencing.agent_dirs);
      fencer_->set_config(config_);  // requests already running keep the config they started with
      monitor_->configure(config_);
      learn_agents();
    }
    if (alerts_out_) alerts_out_->configure(config_->alerts);
    if (health_) {
      health_->configure(config_);
      health_changed();
    }
    decide_vips();
    set_log_level(config_->logging.level);
    spdlog::info("reloaded {} (sha256 {}): {}", options_.config_path, config_->sha256.substr(0, 12),
                 out.changes.empty() ? std::string("no changes to nodes, devices, VIPs, checks or services")
                                     : [&] {
                                         std::string all;
                                         for (auto& c : out.changes) all += (all.empty() ? "" : " | ") + c;
                                         return all;
                                       }());
  }
  last_reload_ = out;
  notifier_.ready();
  return out;
}

void Daemon::stop() {
  if (stopping_) return;
  stopping_ = true;
  notifier_.stopping();
  signals_.cancel();
  watchdog_timer_.cancel();
  if (standalone_lease_timer_) standalone_lease_timer_->cancel();
  if (vips_) vips_->release_all();
  if (monitor_) monitor_->stop();
  if (fencer_) fencer_->cancel_all();
  if (cluster_) cluster_->stop();  // announces holding nothing, then leaves cleanly
  if (passive_events_) passive_events_->cancel();
  if (health_) health_->stop();
  if (alerts_out_) alerts_out_->stop();
  if (data_plane_) data_plane_->stop();
  if (admin_) admin_->close();
  spdlog::info("stopped");
  io_.stop();
}

control::Status Daemon::status() const {
  const config::Config& c = *config_;
  control::Status s;
  s.node = node_name_;
  s.version = HAFRONT_VERSION;
  s.pid = getpid();
  s.uptime_seconds =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_).count();

  s.cluster.name = c.cluster.name;
  s.cluster.mode = config::to_string(c.cluster.mode);
  std::optional<cluster::ClusterManager::Snapshot> snap;
  if (cluster_) {
    snap = cluster_->snapshot();
    s.cluster.quorate = snap->connected && snap->quorate;
    for (const auto& n : snap->nodes) {
      if (n.member) s.cluster.members.push_back({n.name, n.id});
      s.cluster.nodes.push_back(n);
      if (snap->coordinator && *snap->coordinator == n.id) s.cluster.coordinator = n.name;
    }
    s.cluster.fence = snap->fence;
    s.cluster.fencing = snap->fencing;
    s.cluster.plan_alerts = snap->alerts;
    if (monitor_) {
      for (const auto& d : monitor_->snapshot()) {
        s.cluster.fence_devices.push_back({d.name, d.agent, d.state, d.reason, d.checked_ms, d.elapsed_ms, d.protects});
      }
    }
    if (!cluster_->fence_history().empty()) s.cluster.last_fence = cluster_->fence_history().back();
  } else {
    const config::Node* self = c.find_node(node_name_);
    cluster::ClusterView view = cluster::standalone_view(node_name_, self ? self->id : 1);
    s.cluster.quorate = view.quorate;
    for (const auto& m : view.members) s.cluster.members.push_back({m.name, m.id});
  }
  for (const auto& v : vips_->view()) {
    control::VipStatus vs;
    vs.name = v.name;
    vs.address = v.address;
    vs.interface = v.interface;
    vs.driver = v.driver;
    vs.driver_note = v.driver_note;
    if (v.lease_expiry_ns) {
      uint64_t now = vip::LeaseGate::boot_now_ns();
      vs.lease_ms_left = *v.lease_expiry_ns > now ? static_cast<int64_t>((*v.lease_expiry_ns - now) / 1'000'000) : 0;
    }
    vs.state = vip::to_string(v.state);
    vs.reason = v.reason;
    {
      auto link = link_servable_.find(v.name);
      auto gate = gate_block_.find(v.name);
      bool link_ok = link != link_servable_.end() && link->second.first;
      bool gate_ok = gate == gate_block_.end() || gate->second.empty();
      vs.servable = link_ok && gate_ok;
      if (!link_ok) vs.servable_reason = link != link_servable_.end() && !link->second.second.empty() ? link->second.second : "link not ready";
      if (!gate_ok) vs.servable_reason += (vs.servable_reason.empty() ? "" : "; ") + gate->second;
      if (!cluster_ && !vs.servable_reason.empty()) vs.servable_reason += " (standalone mode holds it anyway)";
    }
    if (snap) {
      if (auto it = snap->owners.find(v.name); it != snap->owners.end()) vs.holder = it->second;
      if (auto it = snap->reasons.find(v.name); it != snap->reasons.end() && v.state != vip::VipState::Held) {
        vs.reason = it->second;
      }
    } else if (v.state == vip::VipState::Held) {
      vs.holder = node_name_;
    }
    s.vips.push_back(std::move(vs));
  }
  std::vector<health::ServiceView> health_view = health_ ? health_->view() : std::vector<health::ServiceView>{};
  for (const auto& svc : c.services) {
    control::ServiceStatus ss;
    ss.name = svc.name;
    ss.mode = config::to_string(svc.mode);
    ss.balance = config::to_string(svc.balance);
    for (const auto& l : svc.listen) ss.listen.push_back(l.vip ? *l.vip + ":" + std::to_string(l.endpoint.port) : l.endpoint.str());
    std::optional<proxy::ServiceView> view = data_plane_ ? data_plane_->service(svc.name) : std::nullopt;
    if (view) {
      ss.state = "running";
      control::ServiceTraffic t;
      t.connections = view->totals.connections;
      t.active = view->totals.active;
      t.queued = view->totals.queued;
      t.bytes_from_clients = view->totals.bytes_from_clients;
      t.bytes_to_clients = view->totals.bytes_to_clients;
      t.errors = error_counts(view->totals.errors);
      if (svc.mode == config::ServiceMode::Http) t.http = http_counts(view->totals.requests, view->totals.responses, nullptr);
      ss.traffic = std::move(t);
    } else {
      ss.note = "the data plane is not running";
    }
    const health::ServiceView* hv = nullptr;
    for (const auto& x : health_view) {
      if (x.name == svc.name) hv = &x;
    }
    if (auto v = std::find_if(verdicts_.begin(), verdicts_.end(), [&](const auto& x) { return x.name == svc.name; });
        v != verdicts_.end()) {
      ss.health = health::to_string(v->state);
      ss.health_reason = v->reason;
      ss.root_cause = v->root_cause;
      ss.affected = v->affected;
    }
    if (hv && hv->single_writer) {
      ss.writer = hv->writer;
      ss.writer_reason = hv->writer_reason;
    }
    for (size_t i = 0; i < svc.servers.size(); ++i) {
      const auto& srv = svc.servers[i];
      control::ServerStatus st{srv.name, srv.address.str(), "unknown", "the health monitor is not running"};
      if (hv && i < hv->servers.size() && hv->servers[i].server == srv.name) {
        const health::ServerView& h = hv->servers[i];
        st.state = health::to_string(h.state);
        st.reason = h.reason;
        st.since = h.since_ms > 0 ? health::rfc3339(h.since_ms) : "";
        st.weight = h.weight;
        if (hv->single_writer) st.role = h.writer ? "writer" : "standby";
        if (h.admin != health::AdminState::None) st.admin = health::to_string(h.admin);
        if (h.last_check_ms > 0) {
          st.last_ok = h.last_ok;
          st.last_check = health::rfc3339(h.last_check_ms);
          st.last_reason = h.last_reason;
          const health::Evidence& e = h.evidence;
          if (e.http_status) st.evidence.emplace_back("http_status", std::to_string(*e.http_status));
          if (e.wsrep_local_state) {
            st.evidence.emplace_back("wsrep_local_state", std::to_string(*e.wsrep_local_state) +
                                                              (e.wsrep_state_comment.empty() ? "" : " (" + e.wsrep_state_comment + ")"));
          }
          if (!e.wsrep_cluster_status.empty()) st.evidence.emplace_back("wsrep_cluster_status", e.wsrep_cluster_status);
          if (e.wsrep_last_committed) st.evidence.emplace_back("wsrep_last_committed", std::to_string(*e.wsrep_last_committed));
          if (e.exit_code) st.evidence.emplace_back("exit_code", std::to_string(*e.exit_code));
          if (!e.body_excerpt.empty()) st.evidence.emplace_back("body_excerpt", e.body_excerpt);
          st.evidence.emplace_back("duration_ms", std::to_string(e.duration_ms));
        }
        if (h.ejected) {
          st.ejection = control::EjectionStatus{h.ejected_reason, health::rfc3339(h.ejected_until_ms), h.backoff_ms,
                                                h.ejections};
        }
      }
      if (view && i < view->servers.size() && view->servers[i].name == srv.name) {
        st.traffic = server_traffic(view->servers[i].totals);
        if (svc.mode == config::ServiceMode::Http) {
          const auto& totals = view->servers[i].totals;
          st.traffic->http = http_counts(totals.requests, totals.responses, &totals.response_time);
        }
      }
      if (auto it = passive_counts_.find({svc.name, srv.name}); it != passive_counts_.end()) {
        for (size_t k = 0; k < it->second.size(); ++k) {
          if (it->second[k] > 0) {
            st.passive.emplace_back(proxy::to_string(static_cast<proxy::PassiveEventKind>(k)), it->second[k]);
          }
        }
      }
      ss.servers.push_back(std::move(st));
    }
    s.services.push_back(std::move(ss));
  }
  if (data_plane_) {
    s.data_plane.running = data_plane_->running();
    s.data_plane.backend = proxy::to_string(data_plane_->backend());
    s.data_plane.note = data_plane_->backend_note();
    s.data_plane.workers = data_plane_->workers();
    s.data_plane.passive_events_dropped = data_plane_->events_dropped();
    s.data_plane.access_log_dropped = data_plane_->access_log_dropped();
  }
  s.config.path = options_.config_path;
  s.config.sha256 = c.sha256;
  s.config.loaded_at = loaded_at_;
  s.config.last_reload_ok = last_reload_.ok;
  s.config.last_reload_at = last_reload_at_;
  s.config.last_reload_errors = last_reload_.errors;
  s.standby = standby_;
  for (const auto& [at, message] : alerts_) s.alerts.push_back({at, message});
  if (alerts_out_) {
    for (const auto& a : alerts_out_->active()) {
      s.active_alerts.push_back({a.id, health::to_string(a.severity), a.summary, a.root_cause, a.affected,
                                 health::rfc3339(a.since_ms)});
    }
    for (const auto& k : alerts_out_->sinks()) {
      s.alert_sinks.push_back({k.name, k.sent, k.failed, k.dropped, k.rate_limited, k.last_error});
    }
  }
  return s;
}

int run(const Options& given) {
  std::signal(SIGPIPE, SIG_IGN);
  // Reloads re-read the same file whatever the working folder is later.
  Options options = given;
  std::error_code ec;
  auto absolute = std::filesystem::absolute(options.config_path, ec);
  if (!ec) options.config_path = absolute.lexically_normal().string();
  init_logging(config::LogLevel::Info);
  config::LoadResult loaded = config::load_file(options.config_path);
  log_diagnostics(loaded.diagnostics);
  if (!loaded.ok()) {
    spdlog::error("{} error(s) in {}; not starting", loaded.error_count(), options.config_path);
    return 2;
  }
  const config::Config& c = *loaded.config;
  set_log_level(c.logging.level);
  std::string error;
  auto node = cluster::resolve_node_name(c, options.node_name, local_addresses(), hostname(), error);
  if (!node) {
    spdlog::error("{}", error);
    return 2;
  }
  asio::io_context io(1);
  Daemon daemon(io, options, loaded.config, *node);
  if (auto err = daemon.start()) {
    spdlog::error("cannot start: {}", *err);
    return 1;
  }
  io.run();
  return 0;
}

}  // namespace hafront::daemon
