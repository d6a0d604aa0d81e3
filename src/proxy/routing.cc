#include "proxy/routing.h"

#include <unistd.h>

namespace hafront::proxy {

ListenerSockets::~ListenerSockets() {
  for (int fd : fds_) {
    if (fd >= 0) ::close(fd);
  }
}

void SnapshotSlot::publish(std::shared_ptr<const RoutingSnapshot> snapshot) {
  uint64_t v = snapshot->version;
  current_.store(std::move(snapshot), std::memory_order_release);
  version_.store(v, std::memory_order_release);
}

std::shared_ptr<const RoutingSnapshot> SnapshotSlot::load() const { return current_.load(std::memory_order_acquire); }

uint32_t worker_share(uint32_t limit, uint32_t worker, uint32_t workers) noexcept {
  if (limit == 0 || workers == 0) return limit;
  uint32_t share = limit / workers + (worker < limit % workers ? 1 : 0);
  return share == 0 ? 1 : share;
}

SessionOptions session_options(const config::Service& service) {
  SessionOptions o;
  o.timeouts.connect = service.timeouts.connect;
  o.timeouts.queue = service.timeouts.queue;
  o.timeouts.client = service.timeouts.client;
  o.timeouts.server = service.timeouts.server;
  o.timeouts.idle = service.timeouts.idle;
  o.retries = service.retries;
  o.redispatch = service.redispatch;
  return o;
}

}  // namespace hafront::proxy
