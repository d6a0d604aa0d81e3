#include "proxy/routing.h"

#include <unistd.h>

#include <algorithm>

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

HttpFrontOptions http_front_options(const config::Service& service, const http1::Limits& limits) {
  HttpFrontOptions o;
  o.http_request = service.timeouts.http_request;
  o.keep_alive = service.timeouts.http_keep_alive;
  o.client = service.timeouts.client;
  o.tunnel_idle = service.timeouts.idle;
  o.limits = limits;
  return o;
}

HttpBackendOptions http_backend_options(const config::Service& service) {
  HttpBackendOptions o;
  o.connect = service.timeouts.connect;
  o.queue = service.timeouts.queue;
  o.server = service.timeouts.server;
  o.retries = service.retries;
  o.redispatch = service.redispatch;
  o.forward_for = service.forward_for;
  return o;
}

http1::Limits http_limits(const config::ProxyOptions& proxy) {
  http1::Limits l;
  const auto header = static_cast<uint32_t>(std::min<uint64_t>(proxy.max_header_size, 1u << 24));
  l.max_header_section = header;
  l.max_start_line = std::min<uint32_t>(8 * 1024, header);
  l.max_trailer_section = header;
  return l;
}

std::string_view host_of(std::string_view authority) noexcept {
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    return close == std::string_view::npos ? authority : authority.substr(0, close + 1);
  }
  return authority.substr(0, authority.find(':'));
}

std::optional<size_t> match_route(std::span<const RouteRule> rules, std::string_view authority,
                                  std::string_view path) noexcept {
  const std::string_view host = host_of(authority);
  for (size_t i = 0; i < rules.size(); ++i) {
    const RouteRule& r = rules[i];
    if (!r.host.empty() && !http1::equals_ignore_case(r.host, host)) continue;
    if (!r.path_prefix.empty() && path.substr(0, r.path_prefix.size()) != r.path_prefix) continue;
    return i;
  }
  return std::nullopt;
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
