// Load balancing for one pool, as one worker sees it: which server takes the next connection,
// and what happens to a connection when every server is full.
//
// A Balancer holds a service's servers in configured order with what the control plane sets
// (state, weight, maxconn) and what the worker counts itself (active connections). It picks
// with the service's algorithm, keeps a bounded FIFO queue of connections waiting for a free
// slot and hands a freed slot to the oldest waiter. Like the decisions of src/cluster and
// src/vip it is pure: no sockets, no threads, no clock (time is an argument). pick(),
// dispatch() and the connection counters neither throw nor allocate: they run on every
// request of the data plane.
//
// Everything is per worker: each worker has its own Balancer per pool, so maxconn, maxqueue
// and the active counts it holds are that worker's share. Whoever builds it from the config
// divides pool-wide limits among the workers.
//
// Algorithms (config `balance:`):
//  - roundrobin: smooth weighted round-robin (nginx's): over one cycle of sum(weights) picks
//    each server is picked exactly `weight` times, and the picks are spread out (weights
//    {5,1,1} give a a b a c a a, never a a a a a b c).
//  - leastconn: fewest active connections relative to weight (active/weight); servers that
//    tie are taken in turn, so equal servers share the load.
//  - source: consistent hashing of the client address (or of any key the caller hashes)
//    onto a ring where each server has 64 points per unit of weight, placed by hashing the
//    server's name. A server that goes away loses only its own keys; the others keep theirs,
//    and when it comes back it gets the same keys back. Hash: FNV-1a 64 followed by
//    MurmurHash3's fmix64 finalizer (FNV-1a alone mixes short inputs such as IPv4 addresses
//    poorly). With no key to hash, source falls back to roundrobin, as HAProxy does.
//  - single-writer: one server, the writer, takes every connection; the others stand by.
//    At first the writer is the first usable server in configured order; when it stops being
//    usable the next first usable one takes over, and it stays writer while it is usable even
//    after the old one comes back (no failback). Each change of writer bumps
//    writer_generation(), so the worker can close the old writer's sessions
//    (on_server_down: close-sessions). set_writer() lets the control plane choose the writer
//    (Galera: the node with the highest wsrep_last_committed).
//
// Which servers take new connections (choose_candidates()): servers that are Up with a weight
// above 0. Backup servers serve only when no other server is usable, and then only the first
// usable backup in configured order (HAProxy's default, without `option allbackups`; Galera
// setups rely on it to get one writer). An optional panic threshold routes to Down servers
// rather than to nobody when too few are usable. A server at maxconn is skipped; when every
// candidate is at maxconn the connection queues.
//
// Retries: pick() takes the servers already tried for this request and skips them, so a
// failed connect is retried elsewhere (see retry_action()). Single-writer never retries on a
// standby: writing to two Galera nodes at once is what it exists to prevent.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_types.h"

namespace hafront::proxy {

using SteadyTime = std::chrono::steady_clock::time_point;

// A server's position in the pool's configured server list.
using ServerIndex = uint32_t;

enum class ServerState : uint8_t {
  Up,     // takes new connections
  Down,   // failed its health checks: no new connections (panic mode aside)
  Drain,  // set by an operator: no new connections, existing ones finish
  Maint,  // set by an operator: out of service, never picked, not even in panic mode
};

const char* to_string(ServerState);

inline constexpr uint32_t kMaxWeight = 256;
inline constexpr uint32_t kRingPointsPerWeight = 64;

// One server as the control plane describes it to the worker.
struct ServerSpec {
  std::string name;
  config::Endpoint address;
  uint32_t weight = 1;   // 0..256; 0 takes no new connections (HAProxy: weight 0)
  uint32_t maxconn = 0;  // connections at once through this worker; 0 = no limit
  bool backup = false;
  ServerState state = ServerState::Up;
};

// Up with a weight above 0: may take new connections in normal operation.
bool is_usable(const ServerSpec&) noexcept;

struct BalancerOptions {
  config::Balance balance = config::Balance::RoundRobin;
  // Connections waiting at once in this worker's queue; 0 = no limit of its own (the queue
  // is then bounded by proxy.max_connections and the queue time-out, as in HAProxy).
  uint32_t maxqueue = 0;
  // How long a connection may wait for a slot; 0 = never queue (answer 503 at once).
  std::chrono::milliseconds queue_timeout{5000};
  // Panic mode: when fewer than this percentage of the servers that count (non-backup,
  // weight > 0, Up or Down) are Up, route to all of them rather than to the few or none
  // (issue 4's passive ejection must not empty a pool). 0 = never.
  uint32_t panic_threshold_percent = 0;
};

// Per service: the servers and options the config gives. maxconn and maxqueue are taken as
// they are written; dividing them among workers is the caller's business.
std::vector<ServerSpec> server_specs(const config::Service&);
BalancerOptions balancer_options(const config::Service&);

// The set of servers that may take a new connection, chosen from states and weights alone.
struct Candidates {
  enum class Kind : uint8_t {
    Active,  // the usable non-backup servers
    Backup,  // no non-backup server is usable: the first usable backup only
    Panic,   // too few usable: every non-backup server with weight > 0 that is Up or Down
    None,    // nobody
  };
  Kind kind = Kind::None;
  ServerIndex backup = 0;  // Kind::Backup: the one backup that serves

  bool contains(ServerIndex i, const ServerSpec& s) const noexcept;
};

// Picks the candidate set. Panic rules: the servers that count are the non-backup ones with
// a weight above 0 that are Up or Down; Drain and Maint are an operator's decision and panic
// does not override them. If none of those is Up, the first usable backup serves; with no
// backup either, panic (if enabled) sends to the Down ones rather than nowhere. If some are
// Up but fewer than `panic_threshold_percent` of those that count, panic.
Candidates choose_candidates(std::span<const ServerSpec> servers, uint32_t panic_threshold_percent) noexcept;

// The servers already tried for one request, so a retry goes elsewhere. Holds more than
// the most a request can try (1 + retries, retries <= 10); more are ignored.
class TriedSet {
 public:
  static constexpr size_t kCapacity = 12;

  bool contains(ServerIndex i) const noexcept;
  void add(ServerIndex i) noexcept;
  size_t size() const noexcept { return n_; }
  void clear() noexcept { n_ = 0; }

 private:
  std::array<ServerIndex, kCapacity> ids_{};
  uint8_t n_ = 0;
};

// After a connect to a server failed: give up, retry the same server, or retry another one.
// `failures` counts the failed connects of this request so far (1 after the first).
// Up to `retries` retries; with redispatch each goes to a server not tried yet (HAProxy's
// `option redispatch 1`), without it to the same server (HAProxy without the option).
enum class RetryAction : uint8_t { GiveUp, SameServer, OtherServer };
RetryAction retry_action(uint32_t failures, uint32_t retries, bool redispatch) noexcept;

// Hashes for `source`: FNV-1a 64 + fmix64 of the bytes.
uint64_t hash_bytes(std::span<const uint8_t> bytes) noexcept;
uint64_t hash_key(std::string_view key) noexcept;
uint64_t hash_address(const config::Address& a) noexcept;  // 4 bytes for IPv4, 16 for IPv6

struct PickRequest {
  std::optional<uint64_t> hash;      // source: hash_address() / hash_key(); none: roundrobin
  const TriedSet* tried = nullptr;   // servers to skip (retries); single-writer ignores it
};

enum class PickStatus : uint8_t {
  Picked,       // connect to `server`, then call on_connect_start(server)
  Queue,        // every candidate is at maxconn: enqueue()
  Unavailable,  // no candidate (or all of them tried): answer 503 / close
};

struct Pick {
  PickStatus status = PickStatus::Unavailable;
  ServerIndex server = 0;
};

// A queued connection's receipt, to cancel() it when the client goes away.
struct QueueTicket {
  uint64_t seq = 0;  // 0: none
};

enum class EnqueueStatus : uint8_t {
  Queued,     // wait for dispatch() / on_connection_end() / pop_expired()
  QueueFull,  // maxqueue reached: answer 503 at once
  NoQueue,    // queue_timeout is 0: answer 503 at once
};

struct Enqueued {
  EnqueueStatus status = EnqueueStatus::QueueFull;
  QueueTicket ticket;
};

// A queued connection that now has a server: connect it, then on_connect_start(server).
struct Handoff {
  uint64_t cookie = 0;  // what the caller passed to enqueue()
  ServerIndex server = 0;
};

class Balancer {
 public:
  Balancer(std::vector<ServerSpec> servers, const BalancerOptions& options);

  const BalancerOptions& options() const noexcept { return options_; }
  size_t size() const noexcept { return servers_.size(); }
  const ServerSpec& server(ServerIndex i) const noexcept { return servers_[i]; }
  uint32_t active(ServerIndex i) const noexcept { return runtime_[i].active; }
  std::optional<ServerIndex> find(std::string_view name) const noexcept;
  const Candidates& candidates() const noexcept { return candidates_; }
  bool panic() const noexcept { return candidates_.kind == Candidates::Kind::Panic; }

  // ---- from the control plane. After any of these, call dispatch() until it returns
  // nothing: a server that came back or got room may serve queued connections.
  void set_state(ServerIndex i, ServerState state) noexcept;
  // 0..256 (more is taken as 256). Rebuilds the hash ring of a source pool (allocates), and
  // restarts the round-robin cycle.
  void set_weight(ServerIndex i, uint32_t weight);
  void set_maxconn(ServerIndex i, uint32_t maxconn) noexcept;

  // ---- the pick path
  Pick pick(const PickRequest& request = {}) noexcept;
  void on_connect_start(ServerIndex i) noexcept;
  // A connection on server i ended (or its connect failed). If that freed a slot a queued
  // connection can use, returns it (the oldest that may use it).
  std::optional<Handoff> on_connection_end(ServerIndex i, SteadyTime now) noexcept;

  // ---- the queue (FIFO)
  // Queues a connection that pick() answered Queue for; `request` is kept, so the
  // connection is later picked for with the same hash and without the servers it tried.
  // Allocates only when the queue grows past its largest size so far.
  Enqueued enqueue(uint64_t cookie, SteadyTime now, const PickRequest& request = {}) noexcept;
  // The client went away: forget its queued connection. False if it is not queued.
  bool cancel(QueueTicket ticket) noexcept;
  // The oldest queued connection that is not expired and that a server can take now.
  std::optional<Handoff> dispatch(SteadyTime now) noexcept;
  // The oldest queued connection if it waited queue_timeout: the caller answers 503. Call
  // until it returns nothing, before dispatch().
  std::optional<uint64_t> pop_expired(SteadyTime now) noexcept;
  // When the oldest waiter expires: arm a timer for it.
  std::optional<SteadyTime> next_expiry() const noexcept;
  size_t queued() const noexcept { return live_; }

  // ---- single-writer
  std::optional<ServerIndex> writer() const noexcept { return writer_; }
  // 0 for the writer chosen at start, bumped each time writer() changes (to another server
  // or to none); sessions on any other server than writer() belong to a replaced writer.
  uint64_t writer_generation() const noexcept { return writer_generation_; }
  // The control plane chose this server (Galera policy). Taken if it is usable; false (and
  // nothing changes) if it is unknown or not usable. Later the usual rule applies: it stays
  // while usable.
  bool set_writer(std::string_view name) noexcept;

 private:
  struct Runtime {
    uint32_t active = 0;
    int64_t current = 0;  // smooth weighted round-robin: current weight
  };
  struct RingPoint {
    uint32_t point;
    ServerIndex server;
  };
  struct Waiter {
    uint64_t cookie = 0;
    SteadyTime deadline{};
    uint64_t hash = 0;
    bool has_hash = false;
    bool live = false;
    TriedSet tried;
  };

  bool has_room(ServerIndex i) const noexcept;
  bool eligible(ServerIndex i, const TriedSet* tried) const noexcept;
  Pick pick_roundrobin(const TriedSet* tried) noexcept;
  Pick pick_leastconn(const TriedSet* tried) noexcept;
  Pick pick_hash(uint64_t hash, const TriedSet* tried) noexcept;
  Pick pick_writer() const noexcept;
  bool any_room() const noexcept;
  void changed() noexcept;  // states or weights changed
  void reselect_writer() noexcept;
  void build_ring();

  Waiter& slot(uint64_t seq) noexcept { return queue_[seq & (queue_.size() - 1)]; }
  const Waiter& slot(uint64_t seq) const noexcept { return queue_[seq & (queue_.size() - 1)]; }
  void remove(uint64_t seq) noexcept;
  bool grow() noexcept;

  BalancerOptions options_;
  std::vector<ServerSpec> servers_;
  std::vector<Runtime> runtime_;
  Candidates candidates_;
  ServerIndex lc_next_ = 0;  // leastconn: where the next tie-breaking scan starts
  std::vector<RingPoint> ring_;  // source: sorted by point
  std::optional<ServerIndex> writer_;
  uint64_t writer_generation_ = 0;

  // The queue: a ring buffer of waiters, power-of-two sized, indexed by sequence number.
  // Sequence numbers [head_, tail_) are in it; a cancelled or dispatched waiter in the middle
  // stays as a dead slot until it reaches the head, so cancel() is O(1).
  std::vector<Waiter> queue_;
  uint64_t head_ = 1;
  uint64_t tail_ = 1;
  size_t live_ = 0;
};

}  // namespace hafront::proxy
