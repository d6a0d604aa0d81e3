// The idle server connections of one worker (http mode), for reuse by later requests of any
// client: HAProxy's idle connection pools.
//
// A connection is parked after a complete response on a connection both ends may reuse, and
// taken by the next request the balancer sends to the same server: the most recently parked
// first (it is the least likely to have been closed by the server's own keep-alive
// time-out). The pool is bounded per server and per worker; parking past a bound closes the
// oldest idle connection of that server, or refuses the new one when the worker's bound is
// reached. A connection idle longer than the pool's idle time is closed by purge().
//
// The pool only does the bookkeeping: it holds the worker's handles (its server-connection
// slots) and says which ones to close; the worker owns the sockets, and keeps a receive
// armed on each idle one so that a connection the server closes is noticed and remove()d.
// No sockets, no clock (time is an argument); it allocates only when a server's list grows
// past its largest size so far.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <unordered_map>
#include <vector>

#include "config/config_types.h"
#include "proxy/balance.h"

namespace hafront::proxy {

// Which connections are interchangeable: the same server (its id, which survives reloads)
// at the same address.
struct ServerKey {
  uint32_t id = 0;
  config::Endpoint endpoint;
  bool operator==(const ServerKey&) const = default;
};

struct ServerKeyHash {
  size_t operator()(const ServerKey& k) const noexcept;
};

struct ServerPoolLimits {
  uint32_t per_server = 256;   // idle connections to one server, in this worker
  uint32_t per_worker = 4096;  // idle connections in this worker
  std::chrono::milliseconds max_idle{30000};
};

class ServerPool {
 public:
  using Limits = ServerPoolLimits;

  explicit ServerPool(const Limits& limits = Limits()) : limits_(limits) {}

  // Parks `handle`. Returns a handle to close: the server's oldest idle connection when the
  // server's bound is passed, `handle` itself when the worker's bound is reached, or none.
  std::optional<uint32_t> put(const ServerKey& key, uint32_t handle, SteadyTime now);
  // The most recently parked idle connection to that server, removed from the pool.
  std::optional<uint32_t> take(const ServerKey& key) noexcept;
  // A parked connection went away (the server closed it). False if it is not parked.
  bool remove(const ServerKey& key, uint32_t handle) noexcept;
  // Removes the connections idle for max_idle or longer and calls close(handle) for each.
  void purge(SteadyTime now, const std::function<void(uint32_t)>& close);
  // Removes every connection and calls close(handle) for each.
  void clear(const std::function<void(uint32_t)>& close);

  size_t size() const noexcept { return total_; }
  size_t size(const ServerKey& key) const noexcept;
  const Limits& limits() const noexcept { return limits_; }

 private:
  struct Idle {
    uint32_t handle;
    SteadyTime since;
  };
  Limits limits_;
  // Per server: oldest first, so take() pops the back and purge() trims the front.
  std::unordered_map<ServerKey, std::vector<Idle>, ServerKeyHash> idle_;
  size_t total_ = 0;
};

}  // namespace hafront::proxy
