// The routing snapshot: everything a worker needs to route a connection, built by the
// control plane and published whole. Workers never see it change under them.
//
// Publication is RCU-like. The control thread builds a new RoutingSnapshot, stores it in
// the SnapshotSlot and bumps the slot's version; each worker compares the version (one
// atomic load) between batches of events and, only when it moved, takes the new snapshot
// (a shared_ptr copy). An old snapshot lives as long as some worker or connection still
// holds it; nobody waits for anybody.
//
// Parts that do not change with a reload are shared between snapshots: a ServiceRoute
// whose service is unchanged is reused (same id), so a worker keeps its Balancer for it
// (active counts, round-robin position, queue); listening sockets are reused by address,
// so a reload never closes and reopens a port that stays.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_types.h"
#include "proxy/balance.h"
#include "proxy/http_session.h"
#include "proxy/socket_ops.h"
#include "proxy/stats.h"
#include "proxy/tcp_session.h"

namespace hafront::proxy {

struct ServerRoute {
  std::string name;
  config::Endpoint endpoint;
  SocketAddress address;
  config::ProxyProtocol proxy_protocol = config::ProxyProtocol::None;
  uint32_t id = 0;  // names the server in passive events (DataPlane::server_name())
  std::shared_ptr<ServerStats> stats;
};

// A service as configured; immutable, shared by every snapshot while its config is equal.
struct ServiceRoute {
  uint64_t id = 0;  // new whenever the service's config changed
  std::string name;
  config::Service config;
  SessionOptions session;
  BalancerOptions balancer;  // maxqueue pool-wide: each worker takes its share
  std::vector<ServerRoute> servers;
  std::shared_ptr<ServiceStats> stats;
};

// One listening socket per worker, all bound to the same address with SO_REUSEPORT. The
// sockets close when the last holder (a snapshot, or a worker whose accept on it has not
// finished cancelling) lets go.
class ListenerSockets {
 public:
  ListenerSockets(uint64_t id, config::Endpoint endpoint, std::vector<int> fds)
      : id_(id), endpoint_(endpoint), fds_(std::move(fds)) {}
  ~ListenerSockets();
  ListenerSockets(const ListenerSockets&) = delete;
  ListenerSockets& operator=(const ListenerSockets&) = delete;

  uint64_t id() const noexcept { return id_; }
  const config::Endpoint& endpoint() const noexcept { return endpoint_; }
  int fd(size_t worker) const noexcept { return worker < fds_.size() ? fds_[worker] : -1; }

 private:
  uint64_t id_;
  config::Endpoint endpoint_;
  std::vector<int> fds_;
};

struct ServiceEntry {
  std::shared_ptr<const ServiceRoute> route;
  // States, weights and pool-wide maxconn as the control plane sets them now; each worker
  // divides maxconn among the workers (worker_share()).
  std::vector<ServerSpec> servers;
};

struct ListenerEntry {
  std::shared_ptr<ListenerSockets> sockets;
  uint32_t service = 0;  // index into RoutingSnapshot::services
};

struct RoutingSnapshot {
  uint64_t version = 0;
  std::vector<ServiceEntry> services;
  std::vector<ListenerEntry> listeners;
  uint32_t max_connections_per_worker = 0;
  http1::Limits http_limits;  // proxy.max_header_size and the parser's other bounds
};

class SnapshotSlot {
 public:
  // The control thread. Versions must grow.
  void publish(std::shared_ptr<const RoutingSnapshot> snapshot);
  // Workers, between events: the only read on the request path.
  uint64_t version() const noexcept { return version_.load(std::memory_order_acquire); }
  // Workers, when version() moved.
  std::shared_ptr<const RoutingSnapshot> load() const;

 private:
  std::atomic<std::shared_ptr<const RoutingSnapshot>> current_;
  std::atomic<uint64_t> version_{0};
};

// A worker's share of a pool-wide limit (maxconn, maxqueue, max_connections): the limit
// divided among `workers`, the remainder to the first ones, and at least 1 so that a small
// limit does not turn into "no limit" (0) for some worker. 0 stays 0.
uint32_t worker_share(uint32_t limit, uint32_t worker, uint32_t workers) noexcept;

// The session options of a service (its time-outs and retries).
SessionOptions session_options(const config::Service& service);

// http mode: the options of a service as the listening one (client side) and as the one
// whose servers answer (server side).
HttpFrontOptions http_front_options(const config::Service& service, const http1::Limits& limits);
HttpBackendOptions http_backend_options(const config::Service& service);
// The parser's bounds: proxy.max_header_size for the header section (431 past it), the
// request line at most 8 KiB of it (414 when the target is what overflows).
http1::Limits http_limits(const config::ProxyOptions& proxy);

// One route of a listening http service, as workers match it (config::Route).
struct RouteRule {
  std::string host;         // lower case; empty: any host
  std::string path_prefix;  // empty: any path
  uint32_t target = 0;      // the worker's index of the service it leads to
};

// The host of an authority (Host header, or the target's in absolute form), without the
// port: "Glance.example.com:9292" -> "Glance.example.com", "[::1]:80" -> "[::1]".
std::string_view host_of(std::string_view authority) noexcept;
// The first rule whose host equals the request's (ignoring case and port) and whose path
// prefix begins the request's path (a plain prefix, as HAProxy's path_beg); nullopt: none.
std::optional<size_t> match_route(std::span<const RouteRule> rules, std::string_view authority,
                                  std::string_view path) noexcept;

}  // namespace hafront::proxy
