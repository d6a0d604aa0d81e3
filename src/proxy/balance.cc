#include "proxy/balance.h"

#include <algorithm>
#include <new>

namespace hafront::proxy {
namespace {

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ULL;
constexpr uint64_t kFnvPrime = 0x100000001b3ULL;

// MurmurHash3's 64-bit finalizer: every input bit flips each output bit with probability
// about 1/2, which FNV-1a alone does not give for inputs a few bytes long.
uint64_t fmix64(uint64_t k) noexcept {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

// Ring positions are 32 bits (as in ketama): the top half of the 64-bit hash.
uint32_t ring_point(uint64_t hash) noexcept { return static_cast<uint32_t>(hash >> 32); }

}  // namespace

const char* to_string(ServerState s) {
  switch (s) {
    case ServerState::Up: return "up";
    case ServerState::Down: return "down";
    case ServerState::Drain: return "drain";
    case ServerState::Maint: return "maint";
  }
  return "?";
}

bool is_usable(const ServerSpec& s) noexcept { return s.state == ServerState::Up && s.weight > 0; }

std::vector<ServerSpec> server_specs(const config::Service& service) {
  std::vector<ServerSpec> out;
  out.reserve(service.servers.size());
  for (const auto& s : service.servers) {
    ServerSpec spec;
    spec.name = s.name;
    spec.address = s.address;
    spec.weight = std::min(s.weight, kMaxWeight);
    spec.maxconn = s.maxconn.value_or(0);
    spec.backup = s.backup;
    out.push_back(std::move(spec));
  }
  return out;
}

BalancerOptions balancer_options(const config::Service& service) {
  BalancerOptions o;
  o.balance = service.balance;
  o.maxqueue = service.maxqueue.value_or(0);
  o.queue_timeout = service.timeouts.queue;
  return o;
}

// ---- candidates ------------------------------------------------------------------------

namespace {
// Counted for panic: a non-backup server that takes part in balancing and that only health,
// not an operator, keeps out.
bool counts_for_panic(const ServerSpec& s) noexcept {
  return !s.backup && s.weight > 0 && (s.state == ServerState::Up || s.state == ServerState::Down);
}
}  // namespace

bool Candidates::contains(ServerIndex i, const ServerSpec& s) const noexcept {
  switch (kind) {
    case Kind::Active: return !s.backup && is_usable(s);
    case Kind::Backup: return i == backup;
    case Kind::Panic: return counts_for_panic(s);
    case Kind::None: return false;
  }
  return false;
}

Candidates choose_candidates(std::span<const ServerSpec> servers, uint32_t panic_threshold_percent) noexcept {
  uint64_t counted = 0;
  uint64_t up = 0;
  std::optional<ServerIndex> first_backup;
  for (size_t i = 0; i < servers.size(); ++i) {
    const ServerSpec& s = servers[i];
    if (counts_for_panic(s)) {
      ++counted;
      if (s.state == ServerState::Up) ++up;
    }
    if (s.backup && is_usable(s) && !first_backup) first_backup = static_cast<ServerIndex>(i);
  }
  bool panic_on = panic_threshold_percent > 0;
  if (up == 0) {
    // HAProxy: backups serve when no active server can. Only then does panic send to Down
    // servers: a backup that passes its checks is a better bet than one that fails them.
    if (first_backup) return {Candidates::Kind::Backup, *first_backup};
    if (panic_on && counted > 0) return {Candidates::Kind::Panic, 0};
    return {Candidates::Kind::None, 0};
  }
  if (panic_on && up * 100 < counted * panic_threshold_percent) return {Candidates::Kind::Panic, 0};
  return {Candidates::Kind::Active, 0};
}

// ---- tried set, retries, hashes ----------------------------------------------------------

bool TriedSet::contains(ServerIndex i) const noexcept {
  for (size_t k = 0; k < n_; ++k) {
    if (ids_[k] == i) return true;
  }
  return false;
}

void TriedSet::add(ServerIndex i) noexcept {
  if (n_ < kCapacity && !contains(i)) ids_[n_++] = i;
}

RetryAction retry_action(uint32_t failures, uint32_t retries, bool redispatch) noexcept {
  if (failures == 0) return RetryAction::SameServer;  // nothing failed yet: nothing to change
  if (failures > retries) return RetryAction::GiveUp;
  return redispatch ? RetryAction::OtherServer : RetryAction::SameServer;
}

uint64_t hash_bytes(std::span<const uint8_t> bytes) noexcept {
  uint64_t h = kFnvOffset;
  for (uint8_t b : bytes) {
    h ^= b;
    h *= kFnvPrime;
  }
  return fmix64(h);
}

uint64_t hash_key(std::string_view key) noexcept {
  uint64_t h = kFnvOffset;
  for (char c : key) {
    h ^= static_cast<uint8_t>(c);
    h *= kFnvPrime;
  }
  return fmix64(h);
}

uint64_t hash_address(const config::Address& a) noexcept {
  return hash_bytes(std::span<const uint8_t>(a.bytes.data(), a.is_v6() ? 16 : 4));
}

// ---- balancer --------------------------------------------------------------------------

Balancer::Balancer(std::vector<ServerSpec> servers, const BalancerOptions& options)
    : options_(options), servers_(std::move(servers)), runtime_(servers_.size()) {
  for (auto& s : servers_) s.weight = std::min(s.weight, kMaxWeight);
  build_ring();
  changed();
  writer_generation_ = 0;  // the writer chosen at start is generation 0
}

std::optional<ServerIndex> Balancer::find(std::string_view name) const noexcept {
  for (size_t i = 0; i < servers_.size(); ++i) {
    if (servers_[i].name == name) return static_cast<ServerIndex>(i);
  }
  return std::nullopt;
}

void Balancer::set_state(ServerIndex i, ServerState state) noexcept {
  if (i >= servers_.size() || servers_[i].state == state) return;
  servers_[i].state = state;
  changed();
}

void Balancer::set_weight(ServerIndex i, uint32_t weight) {
  weight = std::min(weight, kMaxWeight);
  if (i >= servers_.size() || servers_[i].weight == weight) return;
  servers_[i].weight = weight;
  // A new cycle with the new weights: stale current weights would skew the first one.
  for (auto& r : runtime_) r.current = 0;
  build_ring();
  changed();
}

void Balancer::set_maxconn(ServerIndex i, uint32_t maxconn) noexcept {
  if (i < servers_.size()) servers_[i].maxconn = maxconn;
}

void Balancer::changed() noexcept {
  candidates_ = choose_candidates(servers_, options_.panic_threshold_percent);
  reselect_writer();
}

void Balancer::reselect_writer() noexcept {
  if (options_.balance != config::Balance::SingleWriter) return;
  if (writer_ && is_usable(servers_[*writer_])) return;  // no failback
  // The first usable server in configured order, backups after the others. Panic does not
  // apply: a writer the checks call down is worse than no writer.
  std::optional<ServerIndex> next;
  for (int pass = 0; pass < 2 && !next; ++pass) {
    bool want_backup = pass == 1;
    for (size_t i = 0; i < servers_.size(); ++i) {
      if (servers_[i].backup == want_backup && is_usable(servers_[i])) {
        next = static_cast<ServerIndex>(i);
        break;
      }
    }
  }
  if (next != writer_) {
    writer_ = next;
    ++writer_generation_;
  }
}

bool Balancer::set_writer(std::string_view name) noexcept {
  if (options_.balance != config::Balance::SingleWriter) return false;
  auto i = find(name);
  if (!i || !is_usable(servers_[*i])) return false;
  if (writer_ != i) {
    writer_ = i;
    ++writer_generation_;
  }
  return true;
}

void Balancer::build_ring() {
  ring_.clear();
  if (options_.balance != config::Balance::Source) return;
  size_t total = 0;
  for (const auto& s : servers_) total += size_t{s.weight} * kRingPointsPerWeight;
  ring_.reserve(total);
  std::string label;
  for (size_t i = 0; i < servers_.size(); ++i) {
    // Points come from the server's name, not its position, so adding or removing another
    // server in the config (a reload) leaves this one's points where they were.
    uint32_t points = servers_[i].weight * kRingPointsPerWeight;
    for (uint32_t k = 0; k < points; ++k) {
      label = servers_[i].name;
      label += '#';
      label += std::to_string(k);
      ring_.push_back({ring_point(hash_key(label)), static_cast<ServerIndex>(i)});
    }
  }
  std::sort(ring_.begin(), ring_.end(), [](const RingPoint& a, const RingPoint& b) {
    return a.point != b.point ? a.point < b.point : a.server < b.server;
  });
}

bool Balancer::has_room(ServerIndex i) const noexcept {
  uint32_t max = servers_[i].maxconn;
  return max == 0 || runtime_[i].active < max;
}

bool Balancer::eligible(ServerIndex i, const TriedSet* tried) const noexcept {
  return candidates_.contains(i, servers_[i]) && !(tried && tried->contains(i));
}

Pick Balancer::pick(const PickRequest& request) noexcept {
  switch (options_.balance) {
    case config::Balance::SingleWriter: return pick_writer();
    case config::Balance::LeastConn: return pick_leastconn(request.tried);
    case config::Balance::Source:
      if (request.hash && !ring_.empty()) return pick_hash(*request.hash, request.tried);
      return pick_roundrobin(request.tried);
    case config::Balance::RoundRobin: break;
  }
  return pick_roundrobin(request.tried);
}

Pick Balancer::pick_writer() const noexcept {
  if (!writer_) return {PickStatus::Unavailable, 0};
  return {has_room(*writer_) ? PickStatus::Picked : PickStatus::Queue, *writer_};
}

// nginx's smooth weighted round-robin: each eligible server's current weight grows by its
// weight; the largest is picked and pays back the sum. Over sum(weights) picks each server is
// picked exactly `weight` times, interleaved. Servers that cannot take this connection (full,
// tried) sit the round out rather than bank credit they would spend in a burst later.
Pick Balancer::pick_roundrobin(const TriedSet* tried) noexcept {
  bool saw_full = false;
  int64_t total = 0;
  std::optional<ServerIndex> best;
  for (ServerIndex i = 0; i < servers_.size(); ++i) {
    if (!eligible(i, tried)) continue;
    if (!has_room(i)) {
      saw_full = true;
      continue;
    }
    Runtime& r = runtime_[i];
    r.current += servers_[i].weight;
    total += servers_[i].weight;
    if (!best || r.current > runtime_[*best].current) best = i;
  }
  if (!best) return {saw_full ? PickStatus::Queue : PickStatus::Unavailable, 0};
  runtime_[*best].current -= total;
  return {PickStatus::Picked, *best};
}

// Fewest active connections per unit of weight, compared by cross-multiplication (no
// division, exact). The scan starts after the last pick, and only a strictly smaller load
// wins, so servers that tie are picked in turn.
Pick Balancer::pick_leastconn(const TriedSet* tried) noexcept {
  const size_t n = servers_.size();
  bool saw_full = false;
  std::optional<ServerIndex> best;
  for (size_t k = 0; k < n; ++k) {
    auto i = static_cast<ServerIndex>((lc_next_ + k) % n);
    if (!eligible(i, tried)) continue;
    if (!has_room(i)) {
      saw_full = true;
      continue;
    }
    if (!best || uint64_t{runtime_[i].active} * servers_[*best].weight <
                     uint64_t{runtime_[*best].active} * servers_[i].weight) {
      best = i;
    }
  }
  if (!best) return {saw_full ? PickStatus::Queue : PickStatus::Unavailable, 0};
  lc_next_ = static_cast<ServerIndex>((*best + 1) % n);
  return {PickStatus::Picked, *best};
}

// The first point at or after the key's, clockwise, whose server may take the connection.
// A server that is not a candidate, was tried or is full is passed over, so its keys go to
// the next server on the ring while the others keep theirs.
Pick Balancer::pick_hash(uint64_t hash, const TriedSet* tried) noexcept {
  // One pass over the servers first, so a full or empty pool does not walk the whole ring.
  bool any_eligible = false;
  bool any_room_here = false;
  for (ServerIndex i = 0; i < servers_.size(); ++i) {
    if (!eligible(i, tried)) continue;
    any_eligible = true;
    if (has_room(i)) {
      any_room_here = true;
      break;
    }
  }
  if (!any_eligible) return {PickStatus::Unavailable, 0};
  if (!any_room_here) return {PickStatus::Queue, 0};
  uint32_t point = ring_point(hash);
  auto start = std::lower_bound(ring_.begin(), ring_.end(), point,
                                [](const RingPoint& p, uint32_t v) { return p.point < v; });
  size_t at = static_cast<size_t>(start - ring_.begin());
  for (size_t k = 0; k < ring_.size(); ++k) {
    ServerIndex i = ring_[(at + k) % ring_.size()].server;
    if (eligible(i, tried) && has_room(i)) return {PickStatus::Picked, i};
  }
  return {PickStatus::Queue, 0};  // not reached: a server with room has points (weight > 0)
}

void Balancer::on_connect_start(ServerIndex i) noexcept {
  if (i < runtime_.size()) ++runtime_[i].active;
}

std::optional<Handoff> Balancer::on_connection_end(ServerIndex i, SteadyTime now) noexcept {
  if (i < runtime_.size() && runtime_[i].active > 0) --runtime_[i].active;
  // Every other server was full (or the waiters would have been dispatched), so the waiter
  // picked for now gets this server's slot if it may use it.
  return dispatch(now);
}

// ---- queue -----------------------------------------------------------------------------

bool Balancer::grow() noexcept {
  size_t size = queue_.empty() ? 16 : queue_.size() * 2;
  std::vector<Waiter> bigger;
  try {
    bigger.resize(size);
  } catch (const std::bad_alloc&) {
    return false;
  }
  for (uint64_t seq = head_; seq < tail_; ++seq) bigger[seq & (size - 1)] = slot(seq);
  queue_.swap(bigger);
  return true;
}

Enqueued Balancer::enqueue(uint64_t cookie, SteadyTime now, const PickRequest& request) noexcept {
  if (options_.queue_timeout.count() <= 0) return {EnqueueStatus::NoQueue, {}};
  if (options_.maxqueue > 0 && live_ >= options_.maxqueue) return {EnqueueStatus::QueueFull, {}};
  if (tail_ - head_ == queue_.size() && !grow()) return {EnqueueStatus::QueueFull, {}};
  Waiter& w = slot(tail_);
  w.cookie = cookie;
  w.deadline = now + options_.queue_timeout;
  w.has_hash = request.hash.has_value();
  w.hash = request.hash.value_or(0);
  w.tried = request.tried ? *request.tried : TriedSet{};
  w.live = true;
  ++live_;
  return {EnqueueStatus::Queued, {tail_++}};
}

void Balancer::remove(uint64_t seq) noexcept {
  slot(seq).live = false;
  --live_;
  while (head_ < tail_ && !slot(head_).live) ++head_;
}

bool Balancer::cancel(QueueTicket ticket) noexcept {
  if (ticket.seq < head_ || ticket.seq >= tail_ || !slot(ticket.seq).live) return false;
  remove(ticket.seq);
  return true;
}

bool Balancer::any_room() const noexcept {
  if (options_.balance == config::Balance::SingleWriter) return writer_ && has_room(*writer_);
  for (ServerIndex i = 0; i < servers_.size(); ++i) {
    if (candidates_.contains(i, servers_[i]) && has_room(i)) return true;
  }
  return false;
}

std::optional<Handoff> Balancer::dispatch(SteadyTime now) noexcept {
  if (live_ == 0 || !any_room()) return std::nullopt;
  // Oldest first. A waiter passes its turn only if the free server is one it already tried.
  for (uint64_t seq = head_; seq < tail_; ++seq) {
    Waiter& w = slot(seq);
    if (!w.live || w.deadline <= now) continue;  // expired: pop_expired() reports it
    PickRequest request;
    if (w.has_hash) request.hash = w.hash;
    request.tried = &w.tried;
    Pick p = pick(request);
    if (p.status != PickStatus::Picked) continue;
    Handoff h{w.cookie, p.server};
    remove(seq);
    return h;
  }
  return std::nullopt;
}

std::optional<uint64_t> Balancer::pop_expired(SteadyTime now) noexcept {
  // Every waiter has the same time-out and `now` only moves forward, so deadlines are in
  // queue order and the oldest live waiter is the first to expire.
  if (live_ == 0) return std::nullopt;
  Waiter& w = slot(head_);  // the head is live: remove() skips dead slots
  if (w.deadline > now) return std::nullopt;
  uint64_t cookie = w.cookie;
  remove(head_);
  return cookie;
}

std::optional<SteadyTime> Balancer::next_expiry() const noexcept {
  if (live_ == 0) return std::nullopt;
  return slot(head_).deadline;
}

}  // namespace hafront::proxy
