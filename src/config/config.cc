#include "config/config.h"

#include <algorithm>
#include <tuple>

namespace hafront::config {
namespace {
template <typename T>
const T* find_by_name(const std::vector<T>& items, std::string_view name) {
  auto it = std::find_if(items.begin(), items.end(), [&](const T& x) { return x.name == name; });
  return it == items.end() ? nullptr : &*it;
}
}  // namespace

const Node* Config::find_node(std::string_view name) const { return find_by_name(cluster.nodes, name); }
const Vip* Config::find_vip(std::string_view name) const { return find_by_name(vips, name); }
const Check* Config::find_check(std::string_view name) const { return find_by_name(checks, name); }
const Service* Config::find_service(std::string_view name) const { return find_by_name(services, name); }

const char* to_string(ClusterMode m) { return m == ClusterMode::Corosync ? "corosync" : "standalone"; }

const char* to_string(VipDriver d) {
  switch (d) {
    case VipDriver::Auto: return "auto";
    case VipDriver::Lease: return "lease";
    case VipDriver::Address: return "address";
  }
  return "?";
}

const char* to_string(CheckKind k) {
  switch (k) {
    case CheckKind::Tcp: return "tcp";
    case CheckKind::Http: return "http";
    case CheckKind::Mysql: return "mysql";
    case CheckKind::Exec: return "exec";
  }
  return "?";
}

const char* to_string(ServiceMode m) { return m == ServiceMode::Http ? "http" : "tcp"; }

const char* to_string(Balance b) {
  switch (b) {
    case Balance::RoundRobin: return "roundrobin";
    case Balance::LeastConn: return "leastconn";
    case Balance::Source: return "source";
    case Balance::SingleWriter: return "single-writer";
  }
  return "?";
}

const char* to_string(OnServerDown o) { return o == OnServerDown::CloseSessions ? "close-sessions" : "none"; }

const char* to_string(ProxyProtocol p) {
  switch (p) {
    case ProxyProtocol::None: return "none";
    case ProxyProtocol::V1: return "v1";
    case ProxyProtocol::V2: return "v2";
  }
  return "?";
}

const char* to_string(LogLevel l) {
  switch (l) {
    case LogLevel::Debug: return "debug";
    case LogLevel::Info: return "info";
    case LogLevel::Warning: return "warning";
    case LogLevel::Error: return "error";
  }
  return "?";
}

const char* to_string(IoBackendChoice c) {
  switch (c) {
    case IoBackendChoice::Auto: return "auto";
    case IoBackendChoice::IoUring: return "io_uring";
    case IoBackendChoice::Epoll: return "epoll";
  }
  return "?";
}

const char* to_string(HealthGate g) {
  switch (g) {
    case HealthGate::All: return "all";
    case HealthGate::Any: return "any";
    case HealthGate::None: return "none";
  }
  return "?";
}

}  // namespace hafront::config

namespace hafront::config {
namespace {
template <typename T, typename Key>
SectionDiff diff_named(const char* section, const std::vector<T>& a, const std::vector<T>& b, Key key) {
  SectionDiff d{section, {}, {}, {}};
  for (const T& x : b) {
    auto it = std::find_if(a.begin(), a.end(), [&](const T& y) { return key(y) == key(x); });
    if (it == a.end()) {
      d.added.push_back(key(x));
    } else if (!(*it == x)) {
      d.changed.push_back(key(x));
    }
  }
  for (const T& y : a) {
    if (std::none_of(b.begin(), b.end(), [&](const T& x) { return key(x) == key(y); })) d.removed.push_back(key(y));
  }
  return d;
}
}  // namespace

std::vector<SectionDiff> diff(const Config& running, const Config& next) {
  auto name = [](const auto& x) { return x.name; };
  std::vector<FenceDevice> fa, fb;
  for (const auto& [n, d] : running.fence_devices) fa.push_back(d);
  for (const auto& [n, d] : next.fence_devices) fb.push_back(d);
  std::vector<SectionDiff> out = {
      diff_named("nodes", running.cluster.nodes, next.cluster.nodes, name),
      diff_named("fence_devices", fa, fb, name),
      diff_named("vips", running.vips, next.vips, name),
      diff_named("checks", running.checks, next.checks, name),
      diff_named("services", running.services, next.services, name),
  };
  std::erase_if(out, [](const SectionDiff& d) { return d.empty(); });
  return out;
}

std::vector<std::string> restart_required(const Config& running, const Config& next,
                                          const std::string& node_name) {
  std::vector<std::string> why;
  if (running.cluster.name != next.cluster.name)
    why.push_back("cluster.name changed ('" + running.cluster.name + "' -> '" + next.cluster.name + "')");
  if (running.cluster.mode != next.cluster.mode)
    why.push_back(std::string("cluster.mode changed (") + to_string(running.cluster.mode) + " -> " +
                  to_string(next.cluster.mode) + ")");
  const Node* mine = running.find_node(node_name);
  const Node* theirs = next.find_node(node_name);
  if (mine && !theirs) why.push_back("this node ('" + node_name + "') is no longer in cluster.nodes");
  if (mine && theirs && (mine->id != theirs->id || mine->address != theirs->address))
    why.push_back("this node's id or address changed in cluster.nodes");
  if (running.cluster.mode == ClusterMode::Corosync) {
    // The replicated table and corosync.conf are built from the node list.
    auto identity = [](const Cluster& c) {
      std::vector<std::tuple<std::string, uint32_t, Address>> out;
      for (const auto& n : c.nodes) out.emplace_back(n.name, n.id, n.address);
      return out;
    };
    if (identity(running.cluster) != identity(next.cluster))
      why.push_back("cluster.nodes changed (names, ids or addresses); update corosync.conf and restart");
  }
  if (running.admin.socket != next.admin.socket)
    why.push_back("admin.socket changed ('" + running.admin.socket + "' -> '" + next.admin.socket + "')");
  if (running.proxy.workers != next.proxy.workers) why.push_back("proxy.workers changed");
  // Each worker's ring and its receive buffers are set up once, at start.
  if (running.proxy.io_backend != next.proxy.io_backend) why.push_back("proxy.io_backend changed");
  if (running.proxy.buffer_size != next.proxy.buffer_size) why.push_back("proxy.buffer_size changed");
  return why;
}

}  // namespace hafront::config
