#include "proxy/data_plane.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <set>
#include <system_error>
#include <thread>

#include "proxy/socket_ops.h"

namespace hafront::proxy {
namespace {

constexpr size_t kEventQueue = 4096;
constexpr int kListenBacklog = 4096;

std::string listen_text(const config::Listen& l) {
  return l.vip ? *l.vip + ":" + std::to_string(l.endpoint.port) + " (" + l.endpoint.str() + ")" : l.endpoint.str();
}

}  // namespace

std::optional<IoChoice> io_choice(config::IoBackendChoice configured, const char* environment, std::string& error) {
  if (environment && *environment) {
    std::string v = environment;
    if (v == "auto") return IoChoice::Auto;
    if (v == "io_uring") return IoChoice::IoUring;
    if (v == "epoll") return IoChoice::Epoll;
    error = "HAFRONT_IO_BACKEND is '" + v + "'; expected auto, io_uring or epoll";
    return std::nullopt;
  }
  switch (configured) {
    case config::IoBackendChoice::Auto: return IoChoice::Auto;
    case config::IoBackendChoice::IoUring: return IoChoice::IoUring;
    case config::IoBackendChoice::Epoll: return IoChoice::Epoll;
  }
  return IoChoice::Auto;
}

DataPlane::DataPlane()
    : events_(std::make_unique<EventChannel<PassiveEvent>>(kEventQueue)), access_log_(std::make_unique<AccessLog>()) {}

DataPlane::~DataPlane() { stop(); }

std::optional<std::string> DataPlane::start(const config::Config& config) {
  std::string error;
  auto choice = io_choice(config.proxy.io_backend, std::getenv("HAFRONT_IO_BACKEND"), error);
  if (!choice) return error;
  WorkerSetup setup;
  setup.io.buffer_size = static_cast<uint32_t>(config.proxy.buffer_size);
  const char* forced_by = std::getenv("HAFRONT_IO_BACKEND") && *std::getenv("HAFRONT_IO_BACKEND")
                              ? "HAFRONT_IO_BACKEND"
                              : "proxy.io_backend";
  if (*choice == IoChoice::Epoll) {
    setup.backend = IoBackend::Epoll;
    backend_note_ = std::string("epoll, as ") + forced_by + " asks";
  } else {
    IoProbe probe = probe_io_uring();
    if (probe.io_uring) {
      setup.backend = IoBackend::IoUring;
      setup.buffer_ring = probe.buffer_ring;
    } else if (*choice == IoChoice::IoUring) {
      return std::string(forced_by) + " is io_uring, but " + probe.why_not;
    } else {
      setup.backend = IoBackend::Epoll;
      backend_note_ = "epoll, because " + probe.why_not;
      spdlog::warn("data plane: io_uring is unavailable ({}); running on epoll", probe.why_not);
    }
  }
  backend_ = setup.backend;
  worker_count_ = config.proxy.workers > 0 ? config.proxy.workers : std::max(1u, std::thread::hardware_concurrency());

  // Two descriptors per connection, and some for everything else.
  const uint64_t spare = 1024;
  uint64_t want = 2 * uint64_t{config.proxy.max_connections} + spare;
  uint64_t limit = raise_file_limit(want);
  if (limit < want) {
    spdlog::warn("data plane: the limit on open files ({}) allows about {} connections, fewer than "
                 "proxy.max_connections ({}); beyond that new connections fail",
                 limit, limit > spare ? (limit - spare) / 2 : 0, config.proxy.max_connections);
  }
  if (auto err = access_log_->open(config.proxy.access_log)) return err;
  access_log_target_ = config.proxy.access_log;

  ListenerMap listeners;
  RouteMap routes;
  auto snapshot = build(config, listeners, routes, error);
  if (!snapshot) return error;
  publish(std::move(snapshot), std::move(listeners), std::move(routes));

  WorkerShared shared{&slot_, events_.get(), access_log_.get(), worker_count_};
  std::string description;
  for (uint32_t i = 0; i < worker_count_; ++i) {
    std::string err;
    try {
      auto worker = std::make_unique<Worker>(i, shared);
      err = worker->start(setup, description);
      if (err.empty()) workers_.push_back(std::move(worker));
    } catch (const std::system_error& e) {
      err = e.what();  // no thread could be made
    }
    if (!err.empty()) {
      stop();
      return "data plane worker " + std::to_string(i) + ": " + err;
    }
  }
  if (backend_ == IoBackend::IoUring) backend_note_ = description;
  spdlog::info("data plane: {} worker(s) on {}", worker_count_, backend_note_);
  for (const auto& svc : config.services) {
    std::string where;
    for (const auto& l : svc.listen) where += (where.empty() ? "" : ", ") + listen_text(l);
    if (svc.mode == config::ServiceMode::Tcp) {
      spdlog::info("service {}: tcp on {}, {} server(s)", svc.name, where, svc.servers.size());
    } else {
      spdlog::info("service {}: http on {}, {} server(s), {} route(s)", svc.name, where.empty() ? "routes only" : where,
                   svc.servers.size(), svc.routes.size());
    }
  }
  return std::nullopt;
}

std::optional<std::string> DataPlane::apply(const config::Config& config, std::vector<std::string>& warnings) {
  if (!running()) return std::nullopt;
  std::string error;
  ListenerMap listeners;
  RouteMap routes;
  auto snapshot = build(config, listeners, routes, error);
  if (!snapshot) return error;  // the sockets opened for it close with `listeners`
  if (config.proxy.access_log != access_log_target_ || !config.proxy.access_log.empty()) {
    // Reopened on every reload, so that log rotation can move the file away first.
    if (auto err = access_log_->open(config.proxy.access_log)) {
      warnings.push_back(*err + "; the access log goes on where it was");
    } else {
      access_log_target_ = config.proxy.access_log;
    }
  }
  for (const auto& [endpoint, sockets] : listeners_) {
    if (!listeners.count(endpoint)) spdlog::info("data plane: no longer listening on {}", endpoint.str());
  }
  for (const auto& [endpoint, sockets] : listeners) {
    if (!listeners_.count(endpoint)) spdlog::info("data plane: now listening on {}", endpoint.str());
  }
  publish(std::move(snapshot), std::move(listeners), std::move(routes));
  return std::nullopt;
}

std::shared_ptr<const ServiceRoute> DataPlane::route_for(const config::Service& svc) {
  if (auto it = routes_.find(svc.name); it != routes_.end() && it->second->config == svc) return it->second;
  auto route = std::make_shared<ServiceRoute>();
  route->id = next_route_id_++;
  route->name = svc.name;
  route->config = svc;
  route->session = session_options(svc);
  route->balancer = balancer_options(svc);
  route->balancer.panic_threshold_percent = svc.panic_threshold_percent;
  auto& stats = service_stats_[svc.name];
  if (!stats) stats = std::make_shared<ServiceStats>(worker_count_);
  route->stats = stats;
  for (const auto& srv : svc.servers) {
    auto& [id, server_stats] = server_stats_[{svc.name, srv.name}];
    if (!server_stats) {
      id = static_cast<uint32_t>(server_names_.size());
      server_names_.push_back({svc.name, srv.name});
      server_stats = std::make_shared<ServerStats>(worker_count_);
    }
    ServerRoute r;
    r.name = srv.name;
    r.endpoint = srv.address;
    r.address = to_socket_address(srv.address);
    r.proxy_protocol = srv.proxy_protocol;
    r.id = id;
    r.stats = server_stats;
    route->servers.push_back(std::move(r));
  }
  return route;
}

std::shared_ptr<RoutingSnapshot> DataPlane::build(const config::Config& config, ListenerMap& listeners,
                                                  RouteMap& routes, std::string& error) {
  auto snapshot = std::make_shared<RoutingSnapshot>();
  snapshot->version = version_ + 1;
  snapshot->max_connections_per_worker = (config.proxy.max_connections + worker_count_ - 1) / worker_count_;
  snapshot->http_limits = http_limits(config.proxy);
  const bool nonblocking = backend_ == IoBackend::Epoll;
  for (const auto& svc : config.services) {
    auto route = route_for(svc);
    routes[svc.name] = route;
    auto index = static_cast<uint32_t>(snapshot->services.size());
    snapshot->services.push_back({route, server_specs(svc)});
    apply_health(snapshot->services.back());
    for (const auto& l : svc.listen) {
      std::shared_ptr<ListenerSockets> sockets;
      if (auto it = listeners_.find(l.endpoint); it != listeners_.end()) {
        sockets = it->second;
      } else {
        std::vector<int> fds;
        for (uint32_t w = 0; w < worker_count_; ++w) {
          std::string why;
          int fd = open_listener(l.endpoint, nonblocking, kListenBacklog, why);
          if (fd < 0) {
            for (int f : fds) ::close(f);
            error = "service " + svc.name + " cannot listen on " + listen_text(l) + ": " + why;
            return nullptr;
          }
          fds.push_back(fd);
        }
        sockets = std::make_shared<ListenerSockets>(next_listener_id_++, l.endpoint, std::move(fds));
      }
      listeners[l.endpoint] = sockets;
      snapshot->listeners.push_back({sockets, index});
    }
  }
  return snapshot;
}

void DataPlane::apply_health(ServiceEntry& entry) const {
  auto it = health_.find(entry.route->name);
  if (it == health_.end()) return;
  for (ServerSpec& s : entry.servers) {
    if (auto h = it->second.find(s.name); h != it->second.end()) {
      s.state = h->second.state;
      s.weight = std::min(h->second.weight, kMaxWeight);
    }
  }
}

void DataPlane::set_server_states(HealthStates states) {
  health_ = std::move(states);
  if (!current_ || !running()) return;
  auto next = std::make_shared<RoutingSnapshot>(*current_);
  next->version = version_ + 1;
  for (ServiceEntry& entry : next->services) apply_health(entry);
  version_ = next->version;
  current_ = next;
  slot_.publish(std::move(next));
  for (auto& w : workers_) w->nudge();
}

void DataPlane::publish(std::shared_ptr<RoutingSnapshot> snapshot, ListenerMap listeners, RouteMap routes) {
  version_ = snapshot->version;
  current_ = snapshot;
  slot_.publish(std::move(snapshot));
  for (auto& w : workers_) w->nudge();
  listeners_ = std::move(listeners);
  routes_ = std::move(routes);
  // Counters of services and servers no longer configured go (a service added again
  // starts from zero); connections still running on them keep their own references.
  std::erase_if(service_stats_, [&](const auto& kv) { return !routes_.count(kv.first); });
  std::erase_if(server_stats_, [&](const auto& kv) {
    auto it = routes_.find(kv.first.first);
    if (it == routes_.end()) return true;
    for (const auto& s : it->second->servers) {
      if (s.name == kv.first.second) return false;
    }
    return true;
  });
}

void DataPlane::stop() {
  for (auto& w : workers_) w->stop();
  workers_.clear();
  // An empty snapshot lets go of the listening sockets.
  auto empty = std::make_shared<RoutingSnapshot>();
  empty->version = ++version_;
  slot_.publish(std::move(empty));
  current_.reset();
  listeners_.clear();
  routes_.clear();
  if (access_log_) access_log_->stop();
}

std::optional<ServiceView> DataPlane::service(const std::string& name) const {
  auto it = routes_.find(name);
  if (it == routes_.end() || !running()) return std::nullopt;
  const ServiceRoute& route = *it->second;
  ServiceView v;
  v.name = route.name;
  v.totals = totals(*route.stats);
  for (const auto& s : route.servers) v.servers.push_back({s.name, totals(*s.stats)});
  return v;
}

const ServerName* DataPlane::server_name(uint32_t id) const noexcept {
  return id < server_names_.size() ? &server_names_[id] : nullptr;
}

}  // namespace hafront::proxy
