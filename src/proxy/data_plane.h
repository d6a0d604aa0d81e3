// The data plane as the control thread sees it: starts the workers, turns each config into
// a RoutingSnapshot and publishes it, and reads back counters and passive health events.
//
// Every method is for the control thread. start() and apply() open the listening sockets
// of new addresses before anything is published, so a bind that fails leaves everything as
// it was and the caller can refuse the config. Services in both modes run here; an http
// service without listen: (reached only through another one's routes) gets no listener.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "config/config_types.h"
#include "proxy/access_log.h"
#include "proxy/event_queue.h"
#include "proxy/io_backend.h"
#include "proxy/routing.h"
#include "proxy/stats.h"
#include "proxy/worker.h"

namespace hafront::proxy {

struct ServerView {
  std::string name;
  ServerTotals totals;
};

struct ServiceView {
  std::string name;
  ServiceTotals totals;
  std::vector<ServerView> servers;  // in configured order
};

// A server's state and weight as the health monitor sets them (src/health/monitor.h).
struct ServerHealthSpec {
  ServerState state = ServerState::Up;
  uint32_t weight = 1;
};
// service -> server -> what the monitor says; servers not named keep their config (Up).
using HealthStates = std::map<std::string, std::map<std::string, ServerHealthSpec>>;

// The server a passive event names.
struct ServerName {
  std::string service;
  std::string server;
};

class DataPlane {
 public:
  DataPlane();
  ~DataPlane();
  DataPlane(const DataPlane&) = delete;
  DataPlane& operator=(const DataPlane&) = delete;

  // Chooses the back-end (proxy.io_backend, overridden by the environment variable
  // HAFRONT_IO_BACKEND), starts proxy.workers workers and publishes the first snapshot.
  // Returns why it cannot start (no io_uring when forced, an address that cannot be bound,
  // an access log that cannot be opened).
  std::optional<std::string> start(const config::Config& config);

  // A reload: listeners for new addresses are opened first; if one fails nothing changes and
  // the error comes back. Otherwise the new snapshot is published: listeners of addresses no
  // longer used close, new ones accept, established connections carry on with the service
  // as it was when they started. Problems that do not stop the reload (the access log file
  // cannot be reopened) are added to `warnings`.
  std::optional<std::string> apply(const config::Config& config, std::vector<std::string>& warnings);

  // Ends every connection and joins the workers. Idempotent.
  void stop();

  // Health: every server's state and weight, published at once in a new snapshot that
  // keeps the listeners and routes as they are (workers keep their balancers and queues),
  // and kept for the snapshots of later reloads. A service with on_server_down:
  // close-sessions has its sessions on servers that went down, and on a replaced writer,
  // closed by the workers.
  void set_server_states(HealthStates states);

  bool running() const noexcept { return !workers_.empty(); }
  IoBackend backend() const noexcept { return backend_; }
  // Why this back-end: its description, and for epoll why not io_uring.
  const std::string& backend_note() const noexcept { return backend_note_; }
  uint32_t workers() const noexcept { return static_cast<uint32_t>(workers_.size()); }

  // Counters of a service; nullopt for a service the config does not have, or when the
  // data plane is not running.
  std::optional<ServiceView> service(const std::string& name) const;

  // Passive health events: readable when events may be waiting; drain() hands them over.
  int events_fd() const noexcept { return events_->fd(); }
  template <typename F>
  size_t drain_events(F&& f) {
    return events_->drain(std::forward<F>(f));
  }
  const ServerName* server_name(uint32_t id) const noexcept;
  uint64_t events_dropped() const noexcept { return events_->dropped(); }
  uint64_t access_log_dropped() const noexcept { return access_log_->dropped(); }

 private:
  using ListenerMap = std::map<config::Endpoint, std::shared_ptr<ListenerSockets>>;
  using RouteMap = std::map<std::string, std::shared_ptr<const ServiceRoute>>;

  // Builds the snapshot for `config`, reusing unchanged routes and open listeners; new
  // listeners and routes go to `listeners` and `routes`. Returns nullptr with `error`.
  std::shared_ptr<RoutingSnapshot> build(const config::Config& config, ListenerMap& listeners, RouteMap& routes,
                                         std::string& error);
  std::shared_ptr<const ServiceRoute> route_for(const config::Service& service);
  void publish(std::shared_ptr<RoutingSnapshot> snapshot, ListenerMap listeners, RouteMap routes);

  void apply_health(ServiceEntry& entry) const;

  HealthStates health_;
  std::shared_ptr<const RoutingSnapshot> current_;  // the last one published
  std::unique_ptr<EventChannel<PassiveEvent>> events_;
  std::unique_ptr<AccessLog> access_log_;
  SnapshotSlot slot_;
  std::vector<std::unique_ptr<Worker>> workers_;
  uint32_t worker_count_ = 0;
  IoBackend backend_ = IoBackend::Epoll;
  std::string backend_note_;
  std::string access_log_target_;
  ListenerMap listeners_;  // by address, in use by the current snapshot
  RouteMap routes_;        // by service name, in the current snapshot
  std::map<std::string, std::shared_ptr<ServiceStats>> service_stats_;
  std::map<std::pair<std::string, std::string>, std::pair<uint32_t, std::shared_ptr<ServerStats>>> server_stats_;
  std::vector<ServerName> server_names_;  // by server id
  uint64_t next_route_id_ = 1;
  uint64_t next_listener_id_ = 1;
  uint64_t version_ = 0;
};

// The back-end a config (and the environment) asks for; an error text for a bad
// HAFRONT_IO_BACKEND value.
std::optional<IoChoice> io_choice(config::IoBackendChoice configured, const char* environment, std::string& error);

}  // namespace hafront::proxy
