#include "proxy/worker.h"

#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <deque>
#include <queue>
#include <unordered_map>
#include <vector>

#include "proxy/http_session.h"
#include "proxy/proxy_protocol.h"
#include "proxy/server_pool.h"
#include "proxy/socket_ops.h"
#include "proxy/tcp_session.h"

namespace hafront::proxy {
namespace {

// PoolRecv: the receive armed on an idle pooled server connection; its slot is the server
// connection's, not a client connection's.
enum class OpCode : uint8_t { Accept = 1, ClientRecv, ServerRecv, ClientSend, ServerSend, Connect, PoolRecv };

constexpr uint32_t kGenerationMask = 0xffffff;

// http mode: server operations carry the attempt (the session's count of server connections,
// 4 bits) they were made for, so those of a connection it let go of are told apart.
uint64_t make_token(uint32_t slot, uint32_t generation, OpCode op, uint8_t attempt = 0) noexcept {
  return (uint64_t{slot} << 32) | (uint64_t{generation & kGenerationMask} << 8) |
         static_cast<uint8_t>((attempt & 0x0f) << 4) | static_cast<uint8_t>(op);
}

struct TokenParts {
  uint32_t slot;
  uint32_t generation;
  OpCode op;
  uint8_t attempt;
};

TokenParts parse_token(uint64_t token) noexcept {
  return {static_cast<uint32_t>(token >> 32), static_cast<uint32_t>((token >> 8) & kGenerationMask),
          static_cast<OpCode>(token & 0x0f), static_cast<uint8_t>((token >> 4) & 0x0f)};
}

// A worker's own state for one service version: its Balancer, kept while the snapshot
// keeps the same ServiceRoute, and by every connection that uses it until it ends.
struct ServiceRuntime {
  ServiceRuntime(std::shared_ptr<const ServiceRoute> r, std::vector<ServerSpec> specs, const BalancerOptions& o)
      : route(std::move(r)), balancer(std::move(specs), o) {}
  std::shared_ptr<const ServiceRoute> route;
  Balancer balancer;
};

// http mode: how one listening service routes its requests, as of one snapshot. A
// connection keeps the table it has while a request is under way, and moves to the
// current one between requests; the table keeps the runtimes it names alive.
class HttpTable final : public HttpRouter {
 public:
  struct Target {
    std::shared_ptr<ServiceRuntime> runtime;
    HttpBackend backend;  // backend.id is the index in `targets`
  };

  const HttpBackend* route(std::string_view host, std::string_view path) noexcept override {
    if (auto i = match_route(rules, host, path)) return &targets[rules[*i].target].backend;
    return front_serves ? &targets[0].backend : nullptr;
  }

  uint64_t version = 0;
  std::shared_ptr<ServiceRuntime> front;
  HttpFrontOptions options;
  std::vector<Target> targets;  // [0]: the listening service itself; not changed once built
  std::vector<RouteRule> rules;
  bool front_serves = false;  // the listening service has servers of its own
  bool needs_peer = false;    // some backend adds X-Forwarded-For or balances by source address
};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

ErrorKind error_of(PassiveEventKind k) noexcept {
  switch (k) {
    case PassiveEventKind::ConnectRefused: return ErrorKind::ConnectRefused;
    case PassiveEventKind::ConnectTimeout: return ErrorKind::ConnectTimeout;
    case PassiveEventKind::ConnectError: return ErrorKind::ConnectError;
    case PassiveEventKind::Reset: return ErrorKind::ServerReset;
    case PassiveEventKind::Http5xx: return ErrorKind::ServerReset;  // not counted as an error
  }
  return ErrorKind::ConnectError;
}

// Errors of a session's end that are the server's doing, counted on the server as well.
bool blames_server(ErrorKind e) noexcept {
  return e == ErrorKind::ServerReset || e == ErrorKind::ServerTimeout || e == ErrorKind::IdleTimeout;
}

int64_t millis(std::optional<std::chrono::nanoseconds> d) noexcept {
  return d ? std::chrono::duration_cast<std::chrono::milliseconds>(*d).count() : -1;
}

}  // namespace

class Worker::Loop {
 public:
  Loop(uint32_t index, WorkerShared shared, std::unique_ptr<IoLoop> io)
      : index_(index), shared_(shared), io_(std::move(io)) {
    completions_.reserve(256);
  }

  void nudge() noexcept { io_->wake(); }
  void request_stop() noexcept {
    stop_.store(true, std::memory_order_release);
    io_->wake();
  }

  void run() {
    now_ = SteadyTime::clock::now();
    apply_snapshot();
    while (!stop_.load(std::memory_order_acquire)) {
      io_->wait(next_timeout(), completions_);
      now_ = SteadyTime::clock::now();
      for (const IoCompletion& c : completions_) dispatch(c);
      completions_.clear();
      run_deferred();
      fire_timers();
      run_deferred();
      if (shared_.snapshot->version() != version_) {
        apply_snapshot();
        run_deferred();
      }
    }
    shut_down();
  }

 private:
  struct Connection {
    bool in_use = false;
    uint32_t generation = 0;
    int client_fd = -1;
    int server_fd = -1;
    uint32_t ops = 0;  // operations submitted and not completed: the slot lives until 0
    std::shared_ptr<ServiceRuntime> service;
    std::optional<TcpSession> session;
    std::optional<ServerIndex> counted_server;  // counted in that server's `active`
    std::optional<SteadyTime> armed;            // the timer entry that is current
    config::Endpoint client;
    config::Endpoint local;
    int64_t accepted_unix_ms = 0;
    // http mode
    bool http = false;
    std::unique_ptr<HttpSession> http_session;  // kept with the slot: its buffers are reused
    std::shared_ptr<HttpTable> table;
    int32_t sconn = -1;         // the server connection in use (index into sconns_)
    bool server_live = false;   // a server connection (or connect) belongs to the session
    uint8_t attempt = 0;        // the session's attempt that server_live is about
    std::optional<std::pair<uint32_t, ServerIndex>> http_counted;  // (backend, server) in `active`
    SteadyTime accepted_at{};
  };

  // A connection to a server in http mode: in use by one client connection's request, or
  // idle in the pool.
  struct ServerConn {
    bool in_use = false;
    uint32_t generation = 0;
    int fd = -1;
    ServerKey key;
    bool pooled = false;
    bool pool_recv = false;  // the pool's receive is pending (PoolRecv)
    bool handover = false;   // taken from the pool; the session hears of it in run_deferred()
    bool dead = false;       // the server closed it while it was being handed over
    bool closing = false;    // closed; the slot waits for the pool receive's completion
    uint32_t owner = 0;      // the client connection slot using it
    uint32_t owner_generation = 0;
  };

  struct Handover {
    uint32_t slot;
    uint32_t generation;
    uint8_t attempt;
  };

  struct Listener {
    bool in_use = false;
    uint32_t generation = 0;
    std::shared_ptr<ListenerSockets> sockets;
    int fd = -1;
    std::shared_ptr<ServiceRuntime> service;
    std::shared_ptr<HttpTable> table;  // http mode
    bool accepting = false;  // an accept is armed (its final completion has not come)
    bool closing = false;    // gone from the snapshot: cancelled, released on the final completion
    std::optional<SteadyTime> rearm_at;
  };

  struct Timer {
    SteadyTime at;
    uint32_t slot;
    uint32_t generation;
    bool operator>(const Timer& o) const noexcept { return at > o.at; }
  };

  struct PendingHandoff {
    std::shared_ptr<ServiceRuntime> service;
    Handoff handoff;
  };

  // ---- snapshot ------------------------------------------------------------------------

  void apply_snapshot() {
    auto snapshot = shared_.snapshot->load();
    if (!snapshot) return;
    version_ = snapshot->version;
    max_connections_ = snapshot->max_connections_per_worker;
    std::unordered_map<uint64_t, std::shared_ptr<ServiceRuntime>> next;
    std::vector<std::shared_ptr<ServiceRuntime>> by_index;
    for (const ServiceEntry& entry : snapshot->services) {
      std::shared_ptr<ServiceRuntime> rt;
      if (auto it = runtimes_.find(entry.route->id); it != runtimes_.end()) {
        rt = it->second;
        const uint64_t writer_generation = rt->balancer.writer_generation();
        std::vector<ServerIndex> went_down;
        for (ServerIndex i = 0; i < entry.servers.size() && i < rt->balancer.size(); ++i) {
          if (entry.servers[i].state == ServerState::Down && rt->balancer.server(i).state != ServerState::Down)
            went_down.push_back(i);
          rt->balancer.set_state(i, entry.servers[i].state);
          rt->balancer.set_weight(i, entry.servers[i].weight);
          rt->balancer.set_maxconn(i, worker_share(entry.servers[i].maxconn, index_, shared_.workers));
        }
        close_sessions(rt, went_down, writer_generation);
      } else {
        std::vector<ServerSpec> specs = entry.servers;
        for (auto& s : specs) s.maxconn = worker_share(s.maxconn, index_, shared_.workers);
        BalancerOptions options = entry.route->balancer;
        options.maxqueue = worker_share(options.maxqueue, index_, shared_.workers);
        rt = std::make_shared<ServiceRuntime>(entry.route, std::move(specs), options);
      }
      next[entry.route->id] = rt;
      by_index.push_back(rt);
      // A server that came back or got room may take queued connections.
      while (auto h = rt->balancer.dispatch(now_)) handoffs_.push_back({rt, *h});
    }
    runtimes_ = std::move(next);
    std::vector<std::shared_ptr<HttpTable>> tables = build_http_tables(*snapshot, by_index);

    std::vector<bool> seen(listeners_.size(), false);
    for (const ListenerEntry& entry : snapshot->listeners) {
      std::shared_ptr<ServiceRuntime> rt = entry.service < by_index.size() ? by_index[entry.service] : nullptr;
      std::shared_ptr<HttpTable> table = entry.service < tables.size() ? tables[entry.service] : nullptr;
      bool found = false;
      for (size_t i = 0; i < listeners_.size(); ++i) {
        Listener& l = listeners_[i];
        if (l.in_use && !l.closing && l.sockets->id() == entry.sockets->id()) {
          l.service = rt;
          l.table = table;
          seen[i] = true;
          found = true;
          break;
        }
      }
      if (!found) {
        size_t slot = open_listener_slot(entry.sockets, rt, table);
        if (slot < seen.size()) seen[slot] = true;  // a reused slot is not one to close below
      }
    }
    for (size_t i = 0; i < seen.size(); ++i) {
      Listener& l = listeners_[i];
      if (l.in_use && !l.closing && !seen[i]) close_listener(l);
    }
  }

  // on_server_down: close-sessions (issue 4): the sessions of a server that went down end
  // now, and in a single-writer pool whose writer changed, every session not on the new
  // writer (it was on a replaced one). Runs only when a snapshot changed states.
  void close_sessions(const std::shared_ptr<ServiceRuntime>& rt, const std::vector<ServerIndex>& went_down,
                      uint64_t old_writer_generation) {
    if (rt->route->config.on_server_down != config::OnServerDown::CloseSessions) return;
    const bool writer_moved = rt->route->balancer.balance == config::Balance::SingleWriter &&
                              rt->balancer.writer_generation() != old_writer_generation;
    if (went_down.empty() && !writer_moved) return;
    for (uint32_t slot = 0; slot < conns_.size(); ++slot) {
      Connection& conn = conns_[slot];
      if (!conn.in_use || conn.service != rt || !conn.session || conn.session->finished()) continue;
      auto phase = conn.session->phase();
      auto server = conn.session->server();
      if (!server || (phase != TcpSession::Phase::Connecting && phase != TcpSession::Phase::Relaying)) continue;
      bool down = std::find(went_down.begin(), went_down.end(), *server) != went_down.end();
      if (down || (writer_moved && rt->balancer.writer() != server)) {
        step(slot, [&](SessionActions& out) { conn.session->kill(now_, out); });
      }
    }
  }

  // http mode: the routing table of each http service of the snapshot (by its index there;
  // nullptr for tcp services), and http_tables_ by name for connections moving on.
  std::vector<std::shared_ptr<HttpTable>> build_http_tables(const RoutingSnapshot& snapshot,
                                                            const std::vector<std::shared_ptr<ServiceRuntime>>& rts) {
    std::vector<std::shared_ptr<HttpTable>> tables(rts.size());
    std::unordered_map<std::string_view, size_t> index_of;
    for (size_t i = 0; i < rts.size(); ++i) index_of[rts[i]->route->name] = i;
    http_tables_.clear();
    for (size_t i = 0; i < rts.size(); ++i) {
      const config::Service& svc = rts[i]->route->config;
      if (svc.mode != config::ServiceMode::Http) continue;
      auto t = std::make_shared<HttpTable>();
      t->version = snapshot.version;
      t->front = rts[i];
      t->options = http_front_options(svc, snapshot.http_limits);
      t->front_serves = !svc.servers.empty();
      t->targets.reserve(1 + svc.routes.size());
      t->targets.push_back({rts[i], HttpBackend{&rts[i]->balancer, http_backend_options(svc), 0}});
      for (const config::Route& r : svc.routes) {
        auto it = index_of.find(r.service);
        if (it == index_of.end()) continue;  // the loader made sure it exists
        const auto& target = rts[it->second];
        uint32_t at = 0;
        while (at < t->targets.size() && t->targets[at].runtime != target) ++at;
        if (at == t->targets.size()) {
          t->targets.push_back({target, HttpBackend{&target->balancer, http_backend_options(target->route->config), at}});
        }
        t->rules.push_back({lower(r.host.value_or("")), r.path_prefix.value_or(""), at});
      }
      for (const HttpTable::Target& target : t->targets) {
        t->needs_peer = t->needs_peer || target.backend.options.forward_for ||
                        target.runtime->route->balancer.balance == config::Balance::Source;
      }
      tables[i] = t;
      http_tables_[svc.name] = t;
    }
    return tables;
  }

  // Returns the slot it took (listeners_.size() when the listener has no socket here).
  size_t open_listener_slot(const std::shared_ptr<ListenerSockets>& sockets, std::shared_ptr<ServiceRuntime> rt,
                            std::shared_ptr<HttpTable> table = nullptr) {
    int fd = sockets->fd(index_);
    if (fd < 0) return listeners_.size();
    size_t slot = 0;
    while (slot < listeners_.size() && listeners_[slot].in_use) ++slot;
    if (slot == listeners_.size()) listeners_.emplace_back();
    Listener& l = listeners_[slot];
    l.in_use = true;
    l.closing = false;
    l.generation = (l.generation + 1) & kGenerationMask;
    l.sockets = sockets;
    l.fd = fd;
    l.service = std::move(rt);
    l.table = std::move(table);
    l.rearm_at.reset();
    arm_accept(static_cast<uint32_t>(slot));
    return slot;
  }

  void arm_accept(uint32_t slot) {
    Listener& l = listeners_[slot];
    l.accepting = true;
    io_->accept(l.fd, make_token(slot, l.generation, OpCode::Accept));
  }

  // The listener left the snapshot: stop accepting. Its sockets stay referenced until the
  // accept's final completion, so the kernel never holds an accept on a closed socket.
  void close_listener(Listener& l) {
    l.closing = true;
    l.service.reset();
    l.table.reset();
    l.rearm_at.reset();
    if (l.accepting) {
      io_->cancel(l.fd);
    } else {
      release_listener(l);
    }
  }

  void release_listener(Listener& l) {
    l.sockets.reset();
    l.fd = -1;
    l.in_use = false;
    l.closing = false;
    l.accepting = false;
  }

  // A free connection slot (a new one when none is free).
  uint32_t take_slot() {
    if (free_slots_.empty()) {
      conns_.emplace_back();
      free_slots_.reserve(conns_.size());
      return static_cast<uint32_t>(conns_.size() - 1);
    }
    uint32_t slot = free_slots_.back();
    free_slots_.pop_back();
    return slot;
  }

  // ---- completions ---------------------------------------------------------------------

  // A receive or send completion of either side, to a tcp or an http session, with the
  // byte counters; false for any other operation.
  template <typename Session, typename Actions>
  bool feed_relay(OpCode op, const IoCompletion& c, Session& s, ServiceCounters& sc, ServerCounters* srv, bool live,
                  Actions& out) {
    const bool counted = live && c.result > 0;
    const auto bytes = static_cast<uint64_t>(counted ? c.result : 0);
    switch (op) {
      case OpCode::ClientRecv:
        if (counted) sc.bytes_from_clients.add(bytes);
        s.on_recv(Side::Client, c.result, c.buffer, now_, out);
        return true;
      case OpCode::ServerRecv:
        if (counted && srv) srv->bytes_from_server.add(bytes);
        s.on_recv(Side::Server, c.result, c.buffer, now_, out);
        return true;
      case OpCode::ClientSend:
        if (counted) sc.bytes_to_clients.add(bytes);
        s.on_send(Side::Client, c.result, now_, out);
        return true;
      case OpCode::ServerSend:
        if (counted && srv) srv->bytes_to_server.add(bytes);
        s.on_send(Side::Server, c.result, now_, out);
        return true;
      default:
        return false;
    }
  }

  void dispatch(const IoCompletion& c) {
    TokenParts t = parse_token(c.token);
    if (t.op == OpCode::Accept) {
      on_accept(t, c);
      return;
    }
    if (t.op == OpCode::PoolRecv) {
      on_pool_recv(t, c);
      return;
    }
    if (t.slot >= conns_.size() || !conns_[t.slot].in_use || conns_[t.slot].generation != t.generation) {
      // Cannot happen while slots live until their last completion; give back what it holds.
      if (c.buffer.valid()) io_->release(c.buffer);
      return;
    }
    Connection& conn = conns_[t.slot];
    if (conn.http) {
      dispatch_http(t, c);
      return;
    }
    --conn.ops;
    TcpSession& s = *conn.session;
    const bool live = !s.finished();
    ServiceCounters& sc = service_counters(conn);
    step(t.slot, [&](SessionActions& out) {
      if (t.op == OpCode::Connect) {
        s.on_connect(c.result, now_, out);
      } else {
        feed_relay(t.op, c, s, sc, server_counters(conn), live, out);
      }
    });
  }

  void on_accept(TokenParts t, const IoCompletion& c) {
    if (t.slot >= listeners_.size() || listeners_[t.slot].generation != t.generation || !listeners_[t.slot].in_use) {
      if (c.result >= 0) ::close(c.result);
      return;
    }
    Listener& l = listeners_[t.slot];
    if (!c.more) {
      l.accepting = false;
      if (l.closing) {
        release_listener(l);
      } else if (c.result < 0) {
        // Out of descriptors or memory: try again shortly rather than spin.
        l.rearm_at = now_ + std::chrono::milliseconds(100);
      } else {
        arm_accept(t.slot);
      }
    }
    if (c.result < 0) {
      if (c.result != -ECANCELED && l.service) {
        l.service->route->stats->at(index_).errors[static_cast<size_t>(ErrorKind::ProxyError)].add();
      }
      return;
    }
    if (!l.service || l.closing) {
      ::close(c.result);
      return;
    }
    if (l.table) {
      accept_http(l.table, l.sockets->endpoint().port, c.result);
      return;
    }
    accept_connection(l.service, c.result);
  }

  void accept_connection(const std::shared_ptr<ServiceRuntime>& rt, int fd) {
    ServiceCounters& sc = rt->route->stats->at(index_);
    if (max_connections_ > 0 && active_ >= max_connections_) {
      ::close(fd);
      sc.errors[static_cast<size_t>(ErrorKind::Rejected)].add();
      return;
    }
    tune_connection(fd);
    uint32_t slot = take_slot();
    Connection& conn = conns_[slot];
    conn.in_use = true;
    conn.http = false;
    conn.client_fd = fd;
    conn.server_fd = -1;
    conn.ops = 0;
    conn.service = rt;
    conn.counted_server.reset();
    conn.armed.reset();
    conn.client = peer_endpoint(fd).value_or(config::Endpoint{});
    conn.local = local_endpoint(fd).value_or(config::Endpoint{});
    conn.accepted_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
    std::optional<uint64_t> hash;
    if (rt->route->balancer.balance == config::Balance::Source) hash = hash_address(conn.client.address);
    conn.session.emplace(rt->balancer, rt->route->session, (uint64_t{slot} << 32) | conn.generation, hash);
    sc.connections.add();
    sc.active.add();
    ++active_;
    step(slot, [&](SessionActions& out) { conn.session->start(now_, out); });
  }

  // Runs one event of a connection's session and everything that follows from it.
  template <typename F>
  void step(uint32_t slot, F&& event) {
    Connection& conn = conns_[slot];
    const bool was_queued = conn.session->phase() == TcpSession::Phase::Queued;
    SessionActions out;
    event(out);
    execute(slot, out);
    const bool queued = conn.session->phase() == TcpSession::Phase::Queued;
    if (queued != was_queued) {
      Counter& q = service_counters(conn).queued;
      queued ? q.add() : q.sub();
    }
    rearm(conn, slot);
    maybe_free(slot);
  }

  void execute(uint32_t slot, const SessionActions& actions) {
    Connection& conn = conns_[slot];
    for (const SessionAction& a : actions) {
      switch (a.kind) {
        case SessionAction::Kind::Recv: {
          int fd = a.side == Side::Client ? conn.client_fd : conn.server_fd;
          if (fd < 0) break;
          io_->recv(fd, make_token(slot, conn.generation, a.side == Side::Client ? OpCode::ClientRecv : OpCode::ServerRecv));
          ++conn.ops;
          break;
        }
        case SessionAction::Kind::Send: {
          int fd = a.side == Side::Client ? conn.client_fd : conn.server_fd;
          if (fd < 0) break;
          io_->send(fd, a.data, a.len,
                    make_token(slot, conn.generation, a.side == Side::Client ? OpCode::ClientSend : OpCode::ServerSend));
          ++conn.ops;
          break;
        }
        case SessionAction::Kind::Release:
          io_->release(a.buffer);
          break;
        case SessionAction::Kind::ShutdownWrite: {
          int fd = a.side == Side::Client ? conn.client_fd : conn.server_fd;
          // A peer that already went away shows up on the next receive or send.
          if (fd >= 0) ::shutdown(fd, SHUT_WR);
          break;
        }
        case SessionAction::Kind::Connect:
          start_connect(slot, a.server);
          break;
        case SessionAction::Kind::CancelConnect:
          if (conn.server_fd >= 0) io_->cancel(conn.server_fd);
          break;
        case SessionAction::Kind::DropServer:
          drop_server(conn);
          break;
        case SessionAction::Kind::Report:
          report(conn, a);
          break;
        case SessionAction::Kind::Connected:
          if (auto* srv = server_counters(conn)) {
            srv->connections.add();
            auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                conn.session->summary().connect_time.value_or(std::chrono::nanoseconds{0}));
            srv->connect_time[connect_bucket(static_cast<uint64_t>(us.count()))].add();
          }
          break;
        case SessionAction::Kind::Handoff:
          handoffs_.push_back({conn.service, a.handoff});
          break;
        case SessionAction::Kind::Finish:
          finish(conn);
          break;
      }
    }
  }

  void start_connect(uint32_t slot, ServerIndex server) {
    Connection& conn = conns_[slot];
    const ServerRoute& route = conn.service->route->servers[server];
    uint64_t token = make_token(slot, conn.generation, OpCode::Connect);
    route.stats->at(index_).active.add();
    conn.counted_server = server;
    int fd = open_server_socket(route.address.family(), io_->wants_nonblocking());
    if (fd < 0) {
      // Out of descriptors: the attempt fails like a connect would, on the next turn.
      IoCompletion c;
      c.token = token;
      c.op = IoOp::Connect;
      c.result = fd;
      synthetic_.push_back(c);
      ++conn.ops;
      return;
    }
    conn.server_fd = fd;
    if (route.proxy_protocol != config::ProxyProtocol::None) {
      std::array<uint8_t, kMaxProxyHeader> header{};
      size_t n = encode_proxy_header(route.proxy_protocol, conn.client, conn.local, header);
      conn.session->set_proxy_header(std::span<const uint8_t>(header.data(), n));
    }
    io_->connect(fd, route.address.get(), route.address.length, token);
    ++conn.ops;
  }

  void drop_server(Connection& conn) {
    if (conn.server_fd >= 0) {
      io_->close(conn.server_fd);
      conn.server_fd = -1;
    }
    if (conn.counted_server) {
      conn.service->route->servers[*conn.counted_server].stats->at(index_).active.sub();
      conn.counted_server.reset();
    }
  }

  void report(Connection& conn, const SessionAction& a) {
    const ServerRoute& route = conn.service->route->servers[a.server];
    if (a.event != PassiveEventKind::Reset) {
      // A failed connect attempt; a reset is counted when the session ends.
      auto e = static_cast<size_t>(error_of(a.event));
      route.stats->at(index_).errors[e].add();
      service_counters(conn).errors[e].add();
    }
    shared_.events->post(PassiveEvent{route.id, a.event, a.error});
  }

  void finish(Connection& conn) {
    if (conn.client_fd >= 0) {
      io_->close(conn.client_fd);
      conn.client_fd = -1;
    }
    // Only a session both sides ended cleanly closes its server connection gracefully;
    // otherwise nothing still queued towards the server may arrive there later.
    if (conn.server_fd >= 0 && conn.session->summary().cause != EndCause::Normal) abort_on_close(conn.server_fd);
    drop_server(conn);
    conn.armed.reset();
    --active_;
    ServiceCounters& sc = service_counters(conn);
    sc.active.sub();
    const SessionSummary& s = conn.session->summary();
    if (s.error) {
      sc.errors[static_cast<size_t>(*s.error)].add();
      if (s.server && blames_server(*s.error)) {
        conn.service->route->servers[*s.server].stats->at(index_).errors[static_cast<size_t>(*s.error)].add();
      }
    }
    if (shared_.access_log->enabled()) log_line(conn);
  }

  void log_line(const Connection& conn) {
    const SessionSummary& s = conn.session->summary();
    const ServiceRoute& route = *conn.service->route;
    AccessLogEntry e;
    e.client = conn.client;
    e.accepted_unix_ms = conn.accepted_unix_ms;
    e.service = route.name;
    if (s.server) e.server = route.servers[*s.server].name;
    e.queue_ms = millis(s.queue_time);
    e.connect_ms = millis(s.connect_time);
    e.total_ms = millis(s.total_time);
    e.bytes_to_client = s.bytes_to_client;
    e.bytes_from_client = s.bytes_from_client;
    e.termination[0] = code(s.cause);
    e.termination[1] = code(s.phase);
    // The first attempt is not a retry; a last attempt that failed was one.
    e.retries = s.connect_time ? s.failed_connects : (s.failed_connects > 0 ? s.failed_connects - 1 : 0);
    std::array<char, kAccessLineMax> line;
    size_t n = format_access_line(e, line);
    shared_.access_log->post(std::span<const char>(line.data(), n));
  }

  void maybe_free(uint32_t slot) {
    Connection& conn = conns_[slot];
    if (conn.http) {
      maybe_free_http(slot);
      return;
    }
    if (!conn.session->finished() || conn.ops > 0) return;
    conn.session->take_buffers([this](IoBuffer b) { io_->release(b); });
    conn.session.reset();
    conn.service.reset();
    conn.in_use = false;
    conn.generation = (conn.generation + 1) & kGenerationMask;
    free_slots_.push_back(slot);
  }

  void handoff(const PendingHandoff& p) {
    uint32_t slot = static_cast<uint32_t>(p.handoff.cookie >> 32);
    auto generation = static_cast<uint32_t>(p.handoff.cookie & 0xffffffff);
    if (slot < conns_.size()) {
      Connection& conn = conns_[slot];
      if (conn.in_use && conn.generation == generation && conn.http &&
          conn.http_session->queued_on() == &p.service->balancer) {
        step_http(slot, [&](HttpActions& out) { conn.http_session->on_dispatch(p.handoff.server, now_, out); });
        return;
      }
      if (conn.in_use && conn.generation == generation && !conn.http && conn.service == p.service &&
          conn.session->phase() == TcpSession::Phase::Queued) {
        step(slot, [&](SessionActions& out) { conn.session->on_dispatch(p.handoff.server, now_, out); });
        return;
      }
    }
    // The waiter went away meanwhile: the free slot goes to the next one.
    if (auto h = p.service->balancer.dispatch(now_)) handoffs_.push_back({p.service, *h});
  }

  void run_deferred() {
    while (!synthetic_.empty() || !handoffs_.empty() || !handovers_.empty()) {
      scratch_completions_.swap(synthetic_);
      for (const IoCompletion& c : scratch_completions_) dispatch(c);
      scratch_completions_.clear();
      scratch_handovers_.swap(handovers_);
      for (const Handover& h : scratch_handovers_) handover(h);
      scratch_handovers_.clear();
      scratch_handoffs_.swap(handoffs_);
      for (const PendingHandoff& h : scratch_handoffs_) handoff(h);
      scratch_handoffs_.clear();
    }
  }

  // ---- timers --------------------------------------------------------------------------

  void rearm(Connection& conn, uint32_t slot) {
    const bool finished = !conn.in_use || (conn.http ? conn.http_session->finished() : conn.session->finished());
    if (finished) {
      conn.armed.reset();
      return;
    }
    auto at = conn.http ? conn.http_session->deadline() : conn.session->deadline();
    if (!at) return;
    // An entry that fires earlier stays: it finds the deadline moved and arms the new one.
    if (conn.armed && *conn.armed <= *at) return;
    conn.armed = *at;
    timers_.push({*at, slot, conn.generation});
  }

  void fire_timers() {
    while (!timers_.empty() && timers_.top().at <= now_) {
      Timer t = timers_.top();
      timers_.pop();
      if (t.slot >= conns_.size()) continue;
      Connection& conn = conns_[t.slot];
      if (!conn.in_use || conn.generation != t.generation || conn.armed != t.at) continue;  // stale entry
      conn.armed.reset();
      if (conn.http) {
        step_http(t.slot, [&](HttpActions& out) { conn.http_session->on_timer(now_, out); });
      } else {
        step(t.slot, [&](SessionActions& out) { conn.session->on_timer(now_, out); });
      }
    }
    if (now_ >= next_purge_) {
      next_purge_ = now_ + std::chrono::seconds(1);
      pool_.purge(now_, [this](uint32_t h) { close_sconn(h); });
    }
    for (size_t i = 0; i < listeners_.size(); ++i) {
      Listener& l = listeners_[i];
      if (l.in_use && !l.closing && l.rearm_at && *l.rearm_at <= now_) {
        l.rearm_at.reset();
        arm_accept(static_cast<uint32_t>(i));
      }
    }
  }

  std::optional<std::chrono::nanoseconds> next_timeout() const {
    std::optional<SteadyTime> at;
    if (!timers_.empty()) at = timers_.top().at;
    for (const Listener& l : listeners_) {
      if (l.in_use && l.rearm_at && (!at || *l.rearm_at < *at)) at = l.rearm_at;
    }
    if (pool_.size() > 0 && (!at || next_purge_ < *at)) at = next_purge_;
    if (!synthetic_.empty() || !handoffs_.empty() || !handovers_.empty()) return std::chrono::nanoseconds{0};
    if (!at) return std::nullopt;
    return std::max(std::chrono::nanoseconds{0}, *at - SteadyTime::clock::now());
  }

  // ---- stop ----------------------------------------------------------------------------

  // Ends every connection and lets every operation come back before the back-end goes, so
  // the kernel never writes into a buffer that was freed.
  void shut_down() {
    now_ = SteadyTime::clock::now();
    for (uint32_t slot = 0; slot < conns_.size(); ++slot) {
      Connection& conn = conns_[slot];
      if (conn.in_use && conn.http && !conn.http_session->finished()) {
        step_http(slot, [&](HttpActions& out) { conn.http_session->kill(now_, out); });
      } else if (conn.in_use && !conn.http && !conn.session->finished()) {
        step(slot, [&](SessionActions& out) { conn.session->kill(now_, out); });
      }
    }
    stopping_ = true;
    pool_.clear([this](uint32_t h) { close_sconn(h); });
    for (Listener& l : listeners_) {
      if (l.in_use && !l.closing) close_listener(l);
    }
    auto until = SteadyTime::clock::now() + std::chrono::seconds(2);
    while (SteadyTime::clock::now() < until &&
           (busy_connections() > 0 || busy_listeners() > 0 || busy_server_conns() > 0)) {
      io_->wait(std::chrono::milliseconds(50), completions_);
      now_ = SteadyTime::clock::now();
      for (const IoCompletion& c : completions_) dispatch(c);
      completions_.clear();
      run_deferred();
    }
    for (Listener& l : listeners_) l.sockets.reset();
    runtimes_.clear();
  }

  size_t busy_connections() const {
    size_t n = 0;
    for (const Connection& c : conns_) n += c.in_use ? 1 : 0;
    return n;
  }

  size_t busy_listeners() const {
    size_t n = 0;
    for (const Listener& l : listeners_) n += l.in_use ? 1 : 0;
    return n;
  }

  size_t busy_server_conns() const {
    size_t n = 0;
    for (const ServerConn& sc : sconns_) n += sc.in_use ? 1 : 0;
    return n;
  }

  // ---- http mode -----------------------------------------------------------------------

  void accept_http(const std::shared_ptr<HttpTable>& table, uint16_t port, int fd) {
    ServiceCounters& sc = table->front->route->stats->at(index_);
    if (max_connections_ > 0 && active_ >= max_connections_) {
      ::close(fd);
      sc.errors[static_cast<size_t>(ErrorKind::Rejected)].add();
      return;
    }
    // TCP_NODELAY only: a whole answer goes out in one send, and idle connections are ended
    // by http_keep_alive rather than found by TCP keep-alive probes.
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    uint32_t slot = take_slot();
    Connection& conn = conns_[slot];
    conn.in_use = true;
    conn.http = true;
    conn.client_fd = fd;
    conn.server_fd = -1;
    conn.ops = 0;
    conn.service = table->front;
    conn.table = table;
    conn.sconn = -1;
    conn.server_live = false;
    conn.attempt = 0;
    conn.http_counted.reset();
    conn.counted_server.reset();
    conn.armed.reset();
    conn.accepted_at = now_;
    // The client's address costs a system call per connection: asked for only when a header,
    // the balancer or the log needs it.
    const bool peer = table->needs_peer || shared_.access_log->enabled();
    conn.client = peer ? peer_endpoint(fd).value_or(config::Endpoint{}) : config::Endpoint{};
    conn.local = config::Endpoint{};  // asked for only when a PROXY header needs it
    conn.local.port = port;
    conn.accepted_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
    HttpClient client;
    if (peer) {
      char text[INET6_ADDRSTRLEN] = "";
      inet_ntop(conn.client.address.is_v6() ? AF_INET6 : AF_INET, conn.client.address.bytes.data(), text,
                sizeof text);
      client.set_address(text);
      client.hash = hash_address(conn.client.address);
    }
    client.local_port = port;
    const uint64_t cookie = (uint64_t{slot} << 32) | conn.generation;
    if (conn.http_session) {
      conn.http_session->reset(*table, table->options, client, cookie);
    } else {
      conn.http_session = std::make_unique<HttpSession>(*table, table->options, client, cookie);
    }
    sc.connections.add();
    sc.active.add();
    ++active_;
    step_http(slot, [&](HttpActions& out) { conn.http_session->start(now_, out); });
  }

  // Runs one event of an http session and everything that follows from it.
  template <typename F>
  void step_http(uint32_t slot, F&& event) {
    Connection& conn = conns_[slot];
    HttpSession& s = *conn.http_session;
    if (conn.table->version != version_ && s.between_requests()) {
      // A reload: the next request goes by the current routes (a service that was removed
      // keeps its old table until the connection ends).
      if (auto it = http_tables_.find(conn.table->front->route->name); it != http_tables_.end()) {
        conn.table = it->second;
        conn.service = conn.table->front;
        s.rebind(*conn.table, conn.table->options);
      }
    }
    const bool was_queued = s.phase() == HttpSession::Phase::Queued;
    HttpActions out;
    event(out);
    execute_http(slot, out);
    const bool queued = s.phase() == HttpSession::Phase::Queued;
    if (queued != was_queued) {
      Counter& q = service_counters(conn).queued;
      queued ? q.add() : q.sub();
    }
    rearm(conn, slot);
    maybe_free(slot);
  }

  void dispatch_http(TokenParts t, const IoCompletion& c) {
    const uint32_t slot = t.slot;
    Connection& conn = conns_[slot];
    --conn.ops;
    const bool server_op = t.op == OpCode::ServerRecv || t.op == OpCode::ServerSend || t.op == OpCode::Connect;
    if (server_op && (t.attempt != conn.attempt || !conn.server_live)) {
      // An operation on a server connection the session let go of: nothing for it.
      if (c.buffer.valid()) io_->release(c.buffer);
      maybe_free(slot);
      return;
    }
    HttpSession& s = *conn.http_session;
    const bool live = !s.finished();
    ServiceCounters& sc = service_counters(conn);
    step_http(slot, [&](HttpActions& out) {
      if (t.op == OpCode::Connect) {
        s.on_connect(c.result, false, false, now_, out);
      } else if (!feed_relay(t.op, c, s, sc, http_server_counters(conn), live, out)) {
        if (c.buffer.valid()) io_->release(c.buffer);
      }
    });
  }

  int server_fd(const Connection& conn) const noexcept {
    return conn.server_live && conn.sconn >= 0 ? sconns_[static_cast<size_t>(conn.sconn)].fd : -1;
  }

  void execute_http(uint32_t slot, const HttpActions& actions) {
    Connection& conn = conns_[slot];
    for (const HttpAction& a : actions) {
      switch (a.kind) {
        case HttpAction::Kind::Recv:
        case HttpAction::Kind::Send: {
          const bool client = a.side == Side::Client;
          int fd = client ? conn.client_fd : server_fd(conn);
          if (fd < 0) break;
          const bool recv = a.kind == HttpAction::Kind::Recv;
          OpCode op = client ? (recv ? OpCode::ClientRecv : OpCode::ClientSend)
                             : (recv ? OpCode::ServerRecv : OpCode::ServerSend);
          uint64_t token = make_token(slot, conn.generation, op, client ? 0 : conn.attempt);
          if (recv) {
            io_->recv(fd, token);
          } else {
            io_->send(fd, a.data, a.len, token);
          }
          ++conn.ops;
          break;
        }
        case HttpAction::Kind::Release:
          io_->release(a.buffer);
          break;
        case HttpAction::Kind::ShutdownWrite: {
          int fd = a.side == Side::Client ? conn.client_fd : server_fd(conn);
          if (fd >= 0) ::shutdown(fd, SHUT_WR);
          break;
        }
        case HttpAction::Kind::Connect:
          http_connect(slot, a.backend, a.server, a.attempt, a.reuse);
          break;
        case HttpAction::Kind::CancelConnect: {
          int fd = server_fd(conn);
          if (fd >= 0) io_->cancel(fd);
          break;
        }
        case HttpAction::Kind::DropServer:
          http_release_server(conn, false);
          break;
        case HttpAction::Kind::ParkServer:
          http_release_server(conn, true);
          break;
        case HttpAction::Kind::Report: {
          const ServerRoute& route = conn.table->targets[a.backend].runtime->route->servers[a.server];
          if (a.event != PassiveEventKind::Reset && a.event != PassiveEventKind::Http5xx) {
            auto e = static_cast<size_t>(error_of(a.event));
            route.stats->at(index_).errors[e].add();
            service_counters(conn).errors[e].add();
          }
          shared_.events->post(PassiveEvent{route.id, a.event, a.error});
          break;
        }
        case HttpAction::Kind::Connected: {
          ServerCounters& srv = conn.table->targets[a.backend].runtime->route->servers[a.server].stats->at(index_);
          srv.connections.add();
          auto us = std::chrono::duration_cast<std::chrono::microseconds>(
              conn.http_session->request().connect_time.value_or(std::chrono::nanoseconds{0}));
          srv.connect_time[connect_bucket(static_cast<uint64_t>(us.count()))].add();
          break;
        }
        case HttpAction::Kind::Handoff:
          handoffs_.push_back({conn.table->targets[a.backend].runtime, a.handoff});
          break;
        case HttpAction::Kind::RequestDone:
          http_request_done(conn, actions.done(a.len));
          break;
        case HttpAction::Kind::Finish:
          if (conn.client_fd >= 0) {
            io_->close(conn.client_fd);
            conn.client_fd = -1;
          }
          http_release_server(conn, false);
          conn.armed.reset();
          --active_;
          service_counters(conn).active.sub();
          break;
      }
    }
  }

  // A Connect: an idle pooled connection to that server when the session allows it (handed
  // over in run_deferred(), never from inside this step), else a new one.
  void http_connect(uint32_t slot, uint32_t backend, ServerIndex server, uint8_t attempt, bool reuse) {
    Connection& conn = conns_[slot];
    const ServerRoute& route = conn.table->targets[backend].runtime->route->servers[server];
    conn.attempt = attempt;
    conn.server_live = true;
    conn.sconn = -1;
    route.stats->at(index_).active.add();
    conn.http_counted = std::make_pair(backend, server);
    ServerKey key{route.id, route.endpoint};
    if (reuse && route.proxy_protocol == config::ProxyProtocol::None) {
      if (auto h = pool_.take(key)) {
        ServerConn& sc = sconns_[*h];
        sc.pooled = false;
        sc.handover = true;
        sc.dead = false;
        sc.owner = slot;
        sc.owner_generation = conn.generation;
        conn.sconn = static_cast<int32_t>(*h);
        handovers_.push_back({slot, conn.generation, attempt});
        return;
      }
    }
    http_open(slot, route, key, attempt);
  }

  void http_open(uint32_t slot, const ServerRoute& route, const ServerKey& key, uint8_t attempt) {
    Connection& conn = conns_[slot];
    uint64_t token = make_token(slot, conn.generation, OpCode::Connect, attempt);
    int fd = open_server_socket(route.address.family(), io_->wants_nonblocking());
    if (fd < 0) {
      // Out of descriptors: the attempt fails like a connect would, on the next turn.
      IoCompletion c;
      c.token = token;
      c.op = IoOp::Connect;
      c.result = fd;
      synthetic_.push_back(c);
      ++conn.ops;
      return;
    }
    uint32_t idx = new_sconn(fd, key, slot, conn.generation);
    conn.sconn = static_cast<int32_t>(idx);
    if (route.proxy_protocol != config::ProxyProtocol::None) {
      if (conn.local.address.is_unspecified()) {
        uint16_t port = conn.local.port;
        conn.local = local_endpoint(conn.client_fd).value_or(conn.local);
        conn.local.port = port;
      }
      std::array<uint8_t, kMaxProxyHeader> header{};
      size_t n = encode_proxy_header(route.proxy_protocol, conn.client, conn.local, header);
      conn.http_session->set_proxy_header(std::span<const uint8_t>(header.data(), n));
    }
    io_->connect(fd, route.address.get(), route.address.length, token);
    ++conn.ops;
  }

  uint32_t new_sconn(int fd, const ServerKey& key, uint32_t owner, uint32_t owner_generation) {
    uint32_t idx;
    if (free_sconns_.empty()) {
      idx = static_cast<uint32_t>(sconns_.size());
      sconns_.emplace_back();
      free_sconns_.reserve(sconns_.size());
    } else {
      idx = free_sconns_.back();
      free_sconns_.pop_back();
    }
    ServerConn& sc = sconns_[idx];
    uint32_t generation = sc.generation;
    sc = ServerConn{};
    sc.generation = generation;
    sc.in_use = true;
    sc.fd = fd;
    sc.key = key;
    sc.owner = owner;
    sc.owner_generation = owner_generation;
    return idx;
  }

  // Closes a server connection; its slot goes once the pool's receive on it came back.
  void close_sconn(uint32_t idx) {
    ServerConn& sc = sconns_[idx];
    if (!sc.in_use || sc.closing) return;
    if (sc.fd >= 0) io_->close(sc.fd);
    sc.fd = -1;
    sc.pooled = false;
    if (sc.pool_recv) {
      sc.closing = true;
      return;
    }
    free_sconn(idx);
  }

  void free_sconn(uint32_t idx) {
    ServerConn& sc = sconns_[idx];
    sc.in_use = false;
    sc.closing = false;
    sc.generation = (sc.generation + 1) & kGenerationMask;
    free_sconns_.push_back(idx);
  }

  // The session is done with its server connection: into the pool (`park`) or closed.
  void http_release_server(Connection& conn, bool park) {
    if (!conn.server_live) return;
    conn.server_live = false;
    if (conn.http_counted) {
      const auto [backend, server] = *conn.http_counted;
      conn.table->targets[backend].runtime->route->servers[server].stats->at(index_).active.sub();
    }
    const int32_t idx = conn.sconn;
    conn.sconn = -1;
    if (idx < 0) return;
    ServerConn& sc = sconns_[static_cast<size_t>(idx)];
    bool pooled = false;
    if (park && !stopping_ && !sc.handover && !sc.dead && sc.fd >= 0 && conn.http_counted) {
      const auto [backend, server] = *conn.http_counted;
      const ServerRoute& route = conn.table->targets[backend].runtime->route->servers[server];
      if (route.proxy_protocol == config::ProxyProtocol::None) {
        sc.pooled = true;
        pooled = true;
        if (auto evicted = pool_.put(sc.key, static_cast<uint32_t>(idx), now_)) {
          close_sconn(*evicted);
          pooled = *evicted != static_cast<uint32_t>(idx);
        }
      }
    }
    if (!pooled) {
      close_sconn(static_cast<uint32_t>(idx));
      return;
    }
    if (!sc.pool_recv) {
      // Armed while idle: a close by the server is noticed, and the next request's response
      // comes through it.
      sc.pool_recv = true;
      io_->recv(sc.fd, make_token(static_cast<uint32_t>(idx), sc.generation, OpCode::PoolRecv));
    }
  }

  // A pooled connection's receive completed: idle, the server closed it (or spoke out of
  // turn) and it goes; taken, it is the new owner's response.
  void on_pool_recv(TokenParts t, const IoCompletion& c) {
    if (t.slot >= sconns_.size() || !sconns_[t.slot].in_use || sconns_[t.slot].generation != t.generation) {
      if (c.buffer.valid()) io_->release(c.buffer);
      return;
    }
    ServerConn& sc = sconns_[t.slot];
    sc.pool_recv = false;
    if (sc.closing) {
      if (c.buffer.valid()) io_->release(c.buffer);
      free_sconn(t.slot);
      return;
    }
    if (sc.pooled) {
      if (c.buffer.valid()) io_->release(c.buffer);
      pool_.remove(sc.key, t.slot);
      close_sconn(t.slot);
      return;
    }
    if (sc.handover) {
      // Taken, but its new owner has not heard yet: it gets a fresh connection instead.
      if (c.buffer.valid()) io_->release(c.buffer);
      sc.dead = true;
      return;
    }
    Connection* conn = sc.owner < conns_.size() ? &conns_[sc.owner] : nullptr;
    if (!conn || !conn->in_use || conn->generation != sc.owner_generation || !conn->http || !conn->server_live ||
        conn->sconn != static_cast<int32_t>(t.slot)) {
      if (c.buffer.valid()) io_->release(c.buffer);
      close_sconn(t.slot);
      return;
    }
    if (c.result > 0) {
      if (auto* srv = http_server_counters(*conn)) srv->bytes_from_server.add(static_cast<uint64_t>(c.result));
    }
    HttpSession& s = *conn->http_session;
    step_http(sc.owner, [&](HttpActions& out) { s.on_recv(Side::Server, c.result, c.buffer, now_, out); });
  }

  void handover(const Handover& h) {
    if (h.slot >= conns_.size()) return;
    Connection& conn = conns_[h.slot];
    if (!conn.in_use || conn.generation != h.generation || !conn.http || conn.attempt != h.attempt ||
        !conn.server_live || conn.sconn < 0) {
      return;
    }
    ServerConn& sc = sconns_[static_cast<size_t>(conn.sconn)];
    sc.handover = false;
    if (sc.dead && conn.http_counted) {
      close_sconn(static_cast<uint32_t>(conn.sconn));
      conn.sconn = -1;
      const auto [backend, server] = *conn.http_counted;
      const ServerRoute& route = conn.table->targets[backend].runtime->route->servers[server];
      http_open(h.slot, route, ServerKey{route.id, route.endpoint}, h.attempt);
      return;
    }
    const bool armed = sc.pool_recv;
    step_http(h.slot, [&](HttpActions& out) { conn.http_session->on_connect(0, true, armed, now_, out); });
  }

  void http_request_done(Connection& conn, const HttpRequestSummary& r) {
    const size_t cls = status_class(r.status);
    auto count = [&](ServiceCounters& c) {
      c.requests.add();
      if (cls < kStatusClasses) c.responses[cls].add();
      if (r.error) c.errors[static_cast<size_t>(*r.error)].add();
    };
    count(service_counters(conn));
    const HttpTable::Target* target =
        r.backend && *r.backend < conn.table->targets.size() ? &conn.table->targets[*r.backend] : nullptr;
    // A request routed to another service counts there too: a service reached only through
    // routes shows its traffic.
    if (target && *r.backend != 0) count(target->runtime->route->stats->at(index_));
    const ServerRoute* server = target && r.server ? &target->runtime->route->servers[*r.server] : nullptr;
    if (server) {
      ServerCounters& srv = server->stats->at(index_);
      srv.requests.add();
      if (cls < kStatusClasses) srv.responses[cls].add();
      if (r.response_time) {
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(*r.response_time);
        srv.response_time[connect_bucket(static_cast<uint64_t>(us.count()))].add();
      }
      if (r.error && blames_server(*r.error)) srv.errors[static_cast<size_t>(*r.error)].add();
    }
    if (!shared_.access_log->enabled()) return;
    HttpAccessLogEntry e;
    e.client = conn.client;
    e.started_unix_ms =
        conn.accepted_unix_ms +
        std::chrono::duration_cast<std::chrono::milliseconds>(r.started - conn.accepted_at).count();
    e.frontend = conn.table->front->route->name;
    if (target) e.backend = target->runtime->route->name;
    if (server) e.server = server->name;
    e.request_ms = millis(r.request_time);
    e.queue_ms = millis(r.queue_time);
    e.connect_ms = r.connect_time ? millis(r.connect_time) : (r.reused ? 0 : -1);
    e.response_ms = millis(r.response_time);
    e.active_ms = millis(r.total_time);
    e.status = r.status;
    e.bytes_to_client = r.bytes_to_client;
    e.termination[0] = code(r.cause);
    e.termination[1] = code(r.phase);
    e.retries = r.failed_connects + (r.retried ? 1 : 0);
    e.request_line = r.request_line();
    std::array<char, kAccessLineMax> line;
    size_t n = format_http_access_line(e, line);
    shared_.access_log->post(std::span<const char>(line.data(), n));
  }

  ServerCounters* http_server_counters(const Connection& conn) noexcept {
    if (!conn.http_counted) return nullptr;
    const auto [backend, server] = *conn.http_counted;
    return &conn.table->targets[backend].runtime->route->servers[server].stats->at(index_);
  }

  void maybe_free_http(uint32_t slot) {
    Connection& conn = conns_[slot];
    if (!conn.http_session->finished() || conn.ops > 0) return;
    conn.http_session->take_buffers([this](IoBuffer b) { io_->release(b); });
    conn.table.reset();
    conn.service.reset();
    conn.http_counted.reset();
    conn.http = false;
    conn.in_use = false;
    conn.generation = (conn.generation + 1) & kGenerationMask;
    free_slots_.push_back(slot);
  }

  // ---- counters ------------------------------------------------------------------------

  ServiceCounters& service_counters(const Connection& conn) noexcept { return conn.service->route->stats->at(index_); }

  ServerCounters* server_counters(const Connection& conn) noexcept {
    auto server = conn.session->server();
    if (!server) return nullptr;
    return &conn.service->route->servers[*server].stats->at(index_);
  }

  uint32_t index_;
  WorkerShared shared_;
  std::unique_ptr<IoLoop> io_;
  std::atomic<bool> stop_{false};
  uint64_t version_ = 0;
  uint32_t max_connections_ = 0;
  uint32_t active_ = 0;
  SteadyTime now_{};
  std::unordered_map<uint64_t, std::shared_ptr<ServiceRuntime>> runtimes_;  // by ServiceRoute id
  std::vector<Listener> listeners_;
  std::deque<Connection> conns_;  // a deque: growing never moves a connection
  std::vector<uint32_t> free_slots_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
  std::vector<IoCompletion> completions_;
  std::vector<IoCompletion> synthetic_;  // completions made here (a socket that could not be made)
  std::vector<PendingHandoff> handoffs_;
  std::vector<IoCompletion> scratch_completions_;
  std::vector<PendingHandoff> scratch_handoffs_;
  // http mode
  std::unordered_map<std::string, std::shared_ptr<HttpTable>> http_tables_;  // by listening service
  std::deque<ServerConn> sconns_;
  std::vector<uint32_t> free_sconns_;
  ServerPool pool_;
  SteadyTime next_purge_{};
  std::vector<Handover> handovers_;
  std::vector<Handover> scratch_handovers_;
  bool stopping_ = false;
};

Worker::Worker(uint32_t index, WorkerShared shared) : index_(index), shared_(shared) {}

Worker::~Worker() { stop(); }

std::string Worker::start(const WorkerSetup& setup, std::string& description) {
  std::promise<std::string> ready;
  std::future<std::string> started = ready.get_future();
  thread_ = std::thread([this, setup, &ready, &description] {
    std::string name = "hafront-w" + std::to_string(index_);
    pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
    std::string error;
    std::unique_ptr<IoLoop> io = setup.backend == IoBackend::IoUring
                                     ? make_io_uring_loop(setup.io, setup.buffer_ring, error)
                                     : make_epoll_loop(setup.io, error);
    if (!io) {
      ready.set_value(error.empty() ? std::string("cannot make the I/O back-end") : error);
      return;
    }
    description = io->describe();
    auto loop = std::make_unique<Loop>(index_, shared_, std::move(io));
    loop_ptr_ = loop.get();
    ready.set_value(std::string());
    // `ready` and `description` belong to start(), which may have returned by now.
    loop->run();
  });
  std::string error = started.get();
  if (!error.empty()) thread_.join();
  return error;
}

void Worker::nudge() noexcept {
  if (loop_ptr_) loop_ptr_->nudge();
}

void Worker::stop() {
  if (!thread_.joinable()) return;
  if (loop_ptr_) loop_ptr_->request_stop();
  thread_.join();
  loop_ptr_ = nullptr;
}

}  // namespace hafront::proxy
