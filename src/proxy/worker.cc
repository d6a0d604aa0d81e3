#include "proxy/worker.h"

#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <queue>
#include <unordered_map>
#include <vector>

#include "proxy/proxy_protocol.h"
#include "proxy/socket_ops.h"
#include "proxy/tcp_session.h"

namespace hafront::proxy {
namespace {

enum class OpCode : uint8_t { Accept = 1, ClientRecv, ServerRecv, ClientSend, ServerSend, Connect };

constexpr uint32_t kGenerationMask = 0xffffff;

uint64_t make_token(uint32_t slot, uint32_t generation, OpCode op) noexcept {
  return (uint64_t{slot} << 32) | (uint64_t{generation & kGenerationMask} << 8) | static_cast<uint8_t>(op);
}

struct TokenParts {
  uint32_t slot;
  uint32_t generation;
  OpCode op;
};

TokenParts parse_token(uint64_t token) noexcept {
  return {static_cast<uint32_t>(token >> 32), static_cast<uint32_t>((token >> 8) & kGenerationMask),
          static_cast<OpCode>(token & 0xff)};
}

// A worker's own state for one service version: its Balancer, kept while the snapshot
// keeps the same ServiceRoute, and by every connection that uses it until it ends.
struct ServiceRuntime {
  ServiceRuntime(std::shared_ptr<const ServiceRoute> r, std::vector<ServerSpec> specs, const BalancerOptions& o)
      : route(std::move(r)), balancer(std::move(specs), o) {}
  std::shared_ptr<const ServiceRoute> route;
  Balancer balancer;
};

ErrorKind error_of(PassiveEventKind k) noexcept {
  switch (k) {
    case PassiveEventKind::ConnectRefused: return ErrorKind::ConnectRefused;
    case PassiveEventKind::ConnectTimeout: return ErrorKind::ConnectTimeout;
    case PassiveEventKind::ConnectError: return ErrorKind::ConnectError;
    case PassiveEventKind::Reset: return ErrorKind::ServerReset;
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
  };

  struct Listener {
    bool in_use = false;
    uint32_t generation = 0;
    std::shared_ptr<ListenerSockets> sockets;
    int fd = -1;
    std::shared_ptr<ServiceRuntime> service;
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
        for (ServerIndex i = 0; i < entry.servers.size() && i < rt->balancer.size(); ++i) {
          rt->balancer.set_state(i, entry.servers[i].state);
          rt->balancer.set_weight(i, entry.servers[i].weight);
          rt->balancer.set_maxconn(i, worker_share(entry.servers[i].maxconn, index_, shared_.workers));
        }
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

    std::vector<bool> seen(listeners_.size(), false);
    for (const ListenerEntry& entry : snapshot->listeners) {
      std::shared_ptr<ServiceRuntime> rt = entry.service < by_index.size() ? by_index[entry.service] : nullptr;
      bool found = false;
      for (size_t i = 0; i < listeners_.size(); ++i) {
        Listener& l = listeners_[i];
        if (l.in_use && !l.closing && l.sockets->id() == entry.sockets->id()) {
          l.service = rt;
          seen[i] = true;
          found = true;
          break;
        }
      }
      if (!found) {
        size_t slot = open_listener_slot(entry.sockets, rt);
        if (slot < seen.size()) seen[slot] = true;  // a reused slot is not one to close below
      }
    }
    for (size_t i = 0; i < seen.size(); ++i) {
      Listener& l = listeners_[i];
      if (l.in_use && !l.closing && !seen[i]) close_listener(l);
    }
  }

  // Returns the slot it took (listeners_.size() when the listener has no socket here).
  size_t open_listener_slot(const std::shared_ptr<ListenerSockets>& sockets, std::shared_ptr<ServiceRuntime> rt) {
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

  // ---- completions ---------------------------------------------------------------------

  void dispatch(const IoCompletion& c) {
    TokenParts t = parse_token(c.token);
    if (t.op == OpCode::Accept) {
      on_accept(t, c);
      return;
    }
    if (t.slot >= conns_.size() || !conns_[t.slot].in_use || conns_[t.slot].generation != t.generation) {
      // Cannot happen while slots live until their last completion; give back what it holds.
      if (c.buffer.valid()) io_->release(c.buffer);
      return;
    }
    Connection& conn = conns_[t.slot];
    --conn.ops;
    TcpSession& s = *conn.session;
    const bool live = !s.finished();
    ServiceCounters& sc = service_counters(conn);
    step(t.slot, [&](SessionActions& out) {
      switch (t.op) {
        case OpCode::ClientRecv:
          if (live && c.result > 0) sc.bytes_from_clients.add(static_cast<uint64_t>(c.result));
          s.on_recv(Side::Client, c.result, c.buffer, now_, out);
          break;
        case OpCode::ServerRecv:
          if (live && c.result > 0) {
            if (auto* srv = server_counters(conn)) srv->bytes_from_server.add(static_cast<uint64_t>(c.result));
          }
          s.on_recv(Side::Server, c.result, c.buffer, now_, out);
          break;
        case OpCode::ClientSend:
          if (live && c.result > 0) sc.bytes_to_clients.add(static_cast<uint64_t>(c.result));
          s.on_send(Side::Client, c.result, now_, out);
          break;
        case OpCode::ServerSend:
          if (live && c.result > 0) {
            if (auto* srv = server_counters(conn)) srv->bytes_to_server.add(static_cast<uint64_t>(c.result));
          }
          s.on_send(Side::Server, c.result, now_, out);
          break;
        case OpCode::Connect:
          s.on_connect(c.result, now_, out);
          break;
        case OpCode::Accept:
          break;
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
    uint32_t slot;
    if (free_slots_.empty()) {
      slot = static_cast<uint32_t>(conns_.size());
      conns_.emplace_back();
      free_slots_.reserve(conns_.size());
    } else {
      slot = free_slots_.back();
      free_slots_.pop_back();
    }
    Connection& conn = conns_[slot];
    conn.in_use = true;
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
      if (conn.in_use && conn.generation == generation && conn.service == p.service &&
          conn.session->phase() == TcpSession::Phase::Queued) {
        step(slot, [&](SessionActions& out) { conn.session->on_dispatch(p.handoff.server, now_, out); });
        return;
      }
    }
    // The waiter went away meanwhile: the free slot goes to the next one.
    if (auto h = p.service->balancer.dispatch(now_)) handoffs_.push_back({p.service, *h});
  }

  void run_deferred() {
    while (!synthetic_.empty() || !handoffs_.empty()) {
      scratch_completions_.swap(synthetic_);
      for (const IoCompletion& c : scratch_completions_) dispatch(c);
      scratch_completions_.clear();
      scratch_handoffs_.swap(handoffs_);
      for (const PendingHandoff& h : scratch_handoffs_) handoff(h);
      scratch_handoffs_.clear();
    }
  }

  // ---- timers --------------------------------------------------------------------------

  void rearm(Connection& conn, uint32_t slot) {
    if (!conn.in_use || conn.session->finished()) {
      conn.armed.reset();
      return;
    }
    auto at = conn.session->deadline();
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
      step(t.slot, [&](SessionActions& out) { conn.session->on_timer(now_, out); });
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
    if (!synthetic_.empty() || !handoffs_.empty()) return std::chrono::nanoseconds{0};
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
      if (conn.in_use && !conn.session->finished()) {
        step(slot, [&](SessionActions& out) { conn.session->kill(now_, out); });
      }
    }
    for (Listener& l : listeners_) {
      if (l.in_use && !l.closing) close_listener(l);
    }
    auto until = SteadyTime::clock::now() + std::chrono::seconds(2);
    while (SteadyTime::clock::now() < until && (busy_connections() > 0 || busy_listeners() > 0)) {
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
