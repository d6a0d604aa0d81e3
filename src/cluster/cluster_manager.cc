#include "cluster/cluster_manager.h"

#include "cluster/lease_rules.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include <charconv>
#include <ctime>
#include <random>

namespace hafront::cluster {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

json::array to_array(const std::set<std::string>& s) {
  json::array a;
  for (const auto& x : s) a.push_back(json::value(x));
  return a;
}

json::array to_array(const std::set<uint32_t>& s) {
  json::array a;
  for (uint32_t x : s) a.push_back(x);
  return a;
}

// Readers that tolerate anything: a malformed message from the network is ignored, never
// trusted and never fatal.
std::optional<std::string> get_string(const json::object& o, std::string_view k) {
  const auto* v = o.if_contains(k);
  if (!v || !v->is_string()) return std::nullopt;
  return std::string(v->get_string());
}

std::optional<uint64_t> as_uint(const json::value& v) {
  if (v.is_uint64()) return v.get_uint64();
  if (v.is_int64() && v.get_int64() >= 0) return static_cast<uint64_t>(v.get_int64());
  return std::nullopt;
}

std::optional<uint64_t> get_uint(const json::object& o, std::string_view k) {
  const auto* v = o.if_contains(k);
  return v ? as_uint(*v) : std::nullopt;
}

// A node id as the config allows them (1..2^31-1); nullopt for anything else.
std::optional<uint32_t> as_id(const json::value& v) {
  auto n = as_uint(v);
  if (!n || *n == 0 || *n > 0x7fffffff) return std::nullopt;
  return static_cast<uint32_t>(*n);
}

int64_t get_int(const json::object& o, std::string_view k) {
  const auto* v = o.if_contains(k);
  if (v && v->is_int64()) return v->get_int64();
  if (v && v->is_uint64() && v->get_uint64() <= static_cast<uint64_t>(INT64_MAX)) return static_cast<int64_t>(v->get_uint64());
  return 0;
}

// A fence history entry on the wire: the `fenced`/`fence_failed` messages and the history
// carried by table offers share this form ("node" is the target's id).
json::object event_to_json(const FenceEvent& e, uint32_t target_id);

bool get_bool(const json::object& o, std::string_view k) {
  const auto* v = o.if_contains(k);
  return v && v->is_bool() && v->get_bool();
}

std::set<std::string> get_strings(const json::object& o, std::string_view k) {
  std::set<std::string> out;
  if (const auto* v = o.if_contains(k); v && v->is_array()) {
    for (const auto& x : v->get_array()) {
      if (x.is_string() && out.size() < 1024) out.insert(std::string(x.get_string()));
    }
  }
  return out;
}

std::set<uint32_t> get_ids(const json::object& o, std::string_view k) {
  std::set<uint32_t> out;
  if (const auto* v = o.if_contains(k); v && v->is_array()) {
    for (const auto& x : v->get_array()) {
      if (auto id = as_id(x)) out.insert(*id);
    }
  }
  return out;
}

uint64_t boot_now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t to_ns(std::chrono::milliseconds d) { return static_cast<uint64_t>(d.count()) * 1'000'000ULL; }

json::object event_to_json(const FenceEvent& e, uint32_t target_id) {
  json::array devices;
  for (const auto& d : e.devices) devices.push_back(json::value(d));
  return json::object{{"node", target_id},         {"by", e.executor},
                      {"result", e.result},        {"action", e.action},
                      {"level", e.level},          {"devices", std::move(devices)},
                      {"reason", e.reason.substr(0, 2000)}, {"rounds", e.rounds},
                      {"requested", e.requested_ms}, {"started", e.started_ms},
                      {"finished", e.finished_ms},   {"delay", e.delay_ms}};
}

// Everything but the target name and the result, which the caller knows best. Bounded:
// the message comes from the network.
FenceEvent event_from_json(const json::object& o) {
  FenceEvent e;
  e.executor = get_string(o, "by").value_or("?").substr(0, 64);
  e.action = get_string(o, "action").value_or("off") == "reboot" ? "reboot" : "off";
  e.level = static_cast<int>(std::clamp<int64_t>(get_int(o, "level"), 0, 1000));
  for (const auto& d : get_strings(o, "devices")) {
    if (e.devices.size() < 16) e.devices.push_back(d.substr(0, 200));
  }
  e.reason = get_string(o, "reason").value_or("").substr(0, 2000);
  e.rounds = static_cast<int>(std::clamp<int64_t>(get_int(o, "rounds"), 0, 1'000'000));
  e.requested_ms = get_int(o, "requested");
  e.started_ms = get_int(o, "started");
  e.finished_ms = get_int(o, "finished");
  e.delay_ms = get_int(o, "delay");
  return e;
}

}  // namespace

ClusterManager::ClusterManager(asio::io_context& io, std::shared_ptr<const config::Config> config, uint32_t self_id,
                               Callbacks callbacks)
    : io_(io),
      config_(std::move(config)),
      self_(self_id),
      cb_(std::move(callbacks)),
      heartbeat_timer_(io),
      lease_timer_(io) {
  for (const auto& n : config_->cluster.nodes) {
    Peer p;
    p.id = n.id;
    p.name = n.name;
    // Nothing is known of what any node did before this daemon started: its leases count
    // from now.
    p.last_state = std::chrono::steady_clock::now();
    peers_[n.id] = p;
  }
  CorosyncClient::Callbacks c;
  c.connected = [this](uint32_t node) { on_connected(node); };
  c.disconnected = [this](const std::string& why) { on_disconnected(why); };
  c.message = [this](const CpgMember& from, const std::string& payload) { on_message(from, payload); };
  c.membership = [this](const auto& m, const auto& l, const auto& j) { on_membership(m, l, j); };
  c.quorum = [this](bool q) { on_quorum(q); };
  c.ring_changed = [this](const std::vector<uint32_t>& ring) { on_ring_changed(ring); };
  corosync_ = std::make_unique<CorosyncClient>(io_, "hafront:" + config_->cluster.name, std::move(c));
}

ClusterManager::~ClusterManager() = default;

void ClusterManager::start() {
  corosync_->start();
  heartbeat();
}

void ClusterManager::stop() {
  stopping_ = true;
  drive_fencing(false, false);
  heartbeat_timer_.cancel();
  lease_timer_.cancel();
  expire_lease();
  holding_.clear();
  send_state();  // the last word: holding nothing
  corosync_->stop();
}

void ClusterManager::reconfigure(std::shared_ptr<const config::Config> config) {
  config_ = std::move(config);
  send_state();  // the digest may have changed
  evaluate();
}

void ClusterManager::set_standby(bool standby) {
  if (standby_ == standby) return;
  standby_ = standby;
  send_state();
}

void ClusterManager::set_servable(const std::string& vip, bool servable) {
  bool changed = servable ? servable_.insert(vip).second : servable_.erase(vip) > 0;
  if (changed) send_state();
}

void ClusterManager::set_leased(const std::string& vip, bool leased) {
  bool changed = leased ? leased_.insert(vip).second : leased_.erase(vip) > 0;
  if (changed) send_state();
}

void ClusterManager::set_holding(const std::string& vip, bool holding) {
  bool changed = holding ? holding_.insert(vip).second : holding_.erase(vip) > 0;
  if (changed) send_state();
}

std::string ClusterManager::request_standby(const std::string& node_name, bool standby) {
  const config::Node* n = config_->find_node(node_name);
  if (!n) return "no node '" + node_name + "' in cluster.nodes";
  if (!corosync_->connected()) return "not connected to Corosync";
  const Peer* p = peers_.count(n->id) ? &peers_.at(n->id) : nullptr;
  if (n->id != self_ && (!p || !p->member)) return "node " + node_name + " is not a member now";
  json::object m{{"t", "standby"}, {"node", n->id}, {"on", standby}};
  if (!corosync_->send(json::serialize(m))) return "Corosync is busy; try again";
  return {};
}

std::string ClusterManager::fence_confirm(const std::string& node_name) {
  const config::Node* n = config_->find_node(node_name);
  if (!n) return "no node '" + node_name + "' in cluster.nodes";
  if (n->id == self_) return "a node cannot confirm its own fencing";
  if (!corosync_->connected()) return "not connected to Corosync";
  json::object m{{"t", "fenced"}, {"node", n->id}, {"by", "operator"}};
  if (!corosync_->send(json::serialize(m))) return "Corosync is busy; try again";
  return {};
}

std::string ClusterManager::request_fence(const std::string& node_name) {
  const config::Node* n = config_->find_node(node_name);
  if (!n) return "no node '" + node_name + "' in cluster.nodes";
  if (!corosync_->connected()) return "not connected to Corosync";
  if (!quorate_) return "this partition is not quorate; it fences nobody";
  if (!fence_executor(n->id)) return "no member of this partition can fence " + node_name;
  json::object m{{"t", "fence_request"}, {"node", n->id}};
  if (!corosync_->send(json::serialize(m))) return "Corosync is busy; try again";
  return {};
}

void ClusterManager::fence_finished(const FenceEvent& e) {
  const config::Node* n = config_->find_node(e.target);
  if (!n) return;
  fencing_.erase(n->id);
  // Not again for 5 s: after a failure, a pause before the retry; after a success, the
  // `fenced` message is on its way back and takes the node out of the plan.
  fence_retry_at_[n->id] = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  FenceEvent sent = e;
  sent.executor = peers_.count(self_) ? peers_.at(self_).name : std::string("?");
  json::object m = event_to_json(sent, n->id);
  m["t"] = e.result == "off" ? "fenced" : "fence_failed";
  outbox_.push_back(json::serialize(m));
  flush_outbox();
}

void ClusterManager::flush_outbox() {
  while (!outbox_.empty() && corosync_->connected()) {
    if (!corosync_->send(outbox_.front())) return;  // busy: the next heartbeat tries again
    outbox_.pop_front();
  }
}

void ClusterManager::record(FenceEvent e) {
  history_.push_back(std::move(e));
  while (history_.size() > kHistory) history_.pop_front();
}

void ClusterManager::merge_history(FenceEvent e) {
  auto same = [&](const FenceEvent& x) {
    return x.target == e.target && x.executor == e.executor && x.result == e.result && x.finished_ms == e.finished_ms;
  };
  if (std::any_of(history_.begin(), history_.end(), same)) return;
  auto at = std::upper_bound(history_.begin(), history_.end(), e.finished_ms,
                             [](int64_t t, const FenceEvent& x) { return t < x.finished_ms; });
  history_.insert(at, std::move(e));
  while (history_.size() > kHistory) history_.pop_front();
}

std::optional<uint32_t> ClusterManager::fence_executor(uint32_t target) const {
  for (const auto& [id, p] : peers_) {
    if (id != target && p.member && !p.silent && config_match(p)) return id;
  }
  return std::nullopt;
}

std::chrono::milliseconds ClusterManager::fence_delay(uint32_t target) const {
  using std::chrono::milliseconds;
  const auto& f = config_->cluster.fencing;
  const Peer* p = peers_.count(target) ? &peers_.at(target) : nullptr;
  const bool manual = manual_fence_.count(target) > 0;
  milliseconds delay{0};
  // The race delays decide which side of a split shoots first. A node whose daemon died
  // (its Corosync said so) shoots nobody: there is no race, and no reason to wait.
  if (!p || !p->daemon_died || manual) {
    if (p) {
      if (const config::Node* n = config_->find_node(p->name)) delay += std::chrono::duration_cast<milliseconds>(n->fence_delay);
    }
    if (f.random_delay.count() > 0) {
      static thread_local std::mt19937_64 rng{std::random_device{}()};
      delay += milliseconds{std::uniform_int_distribution<int64_t>(0, f.random_delay.count())(rng)};
    }
    // The node holding VIPs is fenced last, so in a two-node race it shoots first and the
    // side that serves survives.
    bool holds = std::any_of(owners_.begin(), owners_.end(), [&](const auto& kv) { return kv.second == target; });
    if (holds) delay += std::chrono::duration_cast<milliseconds>(f.priority_delay);
  }
  // Only its daemon died and it gated VIPs with a lease: the members prove its leases out
  // within lease + margin without the fence (its kernel stops answering by itself). A
  // power-off before that kills its Corosync too, the ring stalls while it re-forms, and
  // the proof then waits behind the stall: the takeover would follow the fence (~1.1 s
  // instead of ~0.65 s with a fast BMC, doc/fencing.md). Let the proof finish first -
  // when the others can renew a lease without it; otherwise (two nodes) the fence is what
  // lets the survivor renew, and it must not wait.
  if (p && p->daemon_died && !p->leased.empty() && !p->lease_expired && !manual) {
    size_t others = 0, fenced = 0;
    for (const auto& [id, q] : peers_) {
      if (id == self_ || id == target) continue;
      if (q.member && !q.silent) ++others;
      else if (!q.member && q.proven_down) ++fenced;
    }
    if (others >= lease::acks_needed(config_->cluster.nodes.size(), fenced)) {
      const auto& t = config_->cluster.timings;
      delay += std::chrono::duration_cast<milliseconds>(t.lease + t.lease_margin + 2 * t.heartbeat_interval);
    }
  }
  return delay;
}

void ClusterManager::drive_fencing(bool able, bool keep) {
  // While the members exchange tables after a membership change (the usual moment: the
  // target just vanished) this node may still fence: keep what runs, start nothing.
  if (!able && keep) return;
  std::set<uint32_t> targets;
  if (able) {
    for (uint32_t id : plan_.fence) targets.insert(id);
    for (uint32_t id : manual_fence_) targets.insert(id);
    std::erase_if(targets, [&](uint32_t id) { return fence_executor(id) != self_; });
    // A node without fencing levels cannot be fenced by anyone: only an operator's
    // fence-confirm (or its lease) proves it down. Say so once rather than fail every 5 s;
    // an operator's explicit request still runs and fails with that reason.
    std::erase_if(targets, [&](uint32_t id) {
      const config::Node* n = config_->find_node(peers_.at(id).name);
      bool none = n && n->fencing.empty() && !manual_fence_.count(id);
      if (none && fence_failure_alerted_.insert(id).second) {
        spdlog::warn("node {} has no fencing levels: confirm it down by hand (hafrontctl fence-confirm {})", n->name,
                     n->name);
        if (cb_.alert) cb_.alert("node " + n->name + " is lost and has no fencing levels: check it is off, then "
                                 "run hafrontctl fence-confirm " + n->name);
      }
      return none;
    });
  }
  for (auto it = fencing_.begin(); it != fencing_.end();) {
    if (targets.count(*it)) {
      ++it;
      continue;
    }
    if (cb_.fence_cancel && peers_.count(*it)) cb_.fence_cancel(peers_.at(*it).name);
    it = fencing_.erase(it);
  }
  auto now = std::chrono::steady_clock::now();
  for (uint32_t id : targets) {
    if (fencing_.count(id) || !cb_.fence_start) continue;
    auto retry = fence_retry_at_.find(id);
    if (retry != fence_retry_at_.end() && now < retry->second) continue;
    const std::string& name = peers_.at(id).name;
    auto delay = fence_delay(id);
    spdlog::warn("fencing node {} (delay {} ms): {}", name, delay.count(),
                 manual_fence_.count(id) ? "an operator asked for it" : "it was lost uncleanly");
    if (cb_.fence_start(name, delay)) fencing_.insert(id);
  }
}

ClusterManager::Peer* ClusterManager::peer(uint32_t id) {
  auto it = peers_.find(id);
  return it == peers_.end() ? nullptr : &it->second;
}

void ClusterManager::on_connected(uint32_t node) {
  if (Peer* me = peer(self_)) {  // a fresh member, whatever happened to a previous life
    me->silent = false;
    me->proven_down = false;
    me->departure = Departure::None;
    me->lease_expired = false;
    me->freed.clear();
  }
  synced_ = false;
  if (node != self_) {
    spdlog::error("Corosync says this is node {}, but --node/config say {}: check corosync.conf's nodeid", node, self_);
  }
  send_state();
}

void ClusterManager::on_disconnected(const std::string& why) {
  quorate_ = false;
  synced_ = false;
  for (auto& [id, p] : peers_) p.member = false;
  drive_fencing(false, false);
  expire_lease();
  release_all("lost the connection to Corosync (" + why + ")");
}

void ClusterManager::release_all(const std::string& why) {
  bool any = false;
  for (const auto& v : config_->vips) {
    if (wanted_[v.name]) any = true;
    wanted_[v.name] = false;
    if (cb_.want) cb_.want(v.name, false);
  }
  if (any) spdlog::warn("releasing every VIP: {}", why);
}

void ClusterManager::on_quorum(bool quorate) {
  if (quorate_ == quorate) return;
  quorate_ = quorate;
  spdlog::info("quorum: {}", quorate ? "quorate" : "NOT quorate");
  if (!quorate) {
    expire_lease();  // the kernel stops answering now, whatever the VIP manager does next
    release_all("this partition lost quorum");
  }
  evaluate();
}

void ClusterManager::on_membership(const std::vector<CpgMember>& members,
                                   const std::vector<std::pair<CpgMember, LeaveReason>>& left,
                                   const std::vector<CpgMember>& joined) {
  for (const auto& [m, reason] : left) {
    Peer* p = peer(m.node);
    if (!p) continue;
    p->departure = reason == LeaveReason::Leave ? Departure::Clean : Departure::Unclean;
    p->daemon_died = reason == LeaveReason::ProcDown;
    spdlog::info("node {} left the group ({})", p->name,
                 reason == LeaveReason::Leave ? "cleanly" : reason == LeaveReason::ProcDown ? "its daemon died" : "node down");
  }
  for (const auto& m : joined) {
    Peer* p = peer(m.node);
    if (!p || m.node == self_) continue;
    // A fresh member: whatever was known about a previous life of it is over.
    p->departure = Departure::None;
    p->daemon_died = false;
    p->silent = false;
    p->proven_down = false;
    p->seen_state = false;
    p->holding.clear();
    p->may_hold.clear();
    p->last_heard = std::chrono::steady_clock::now();
    p->leased.clear();
    p->lease_expired = false;
    p->freed.clear();
    p->attested = false;
    fence_failure_alerted_.erase(p->id);
    fence_retry_at_.erase(p->id);
    spdlog::info("node {} joined the group", p->name);
  }
  ++view_;
  auto now = std::chrono::steady_clock::now();
  for (auto& [id, p] : peers_) {
    bool was_member = p.member;
    p.member = std::any_of(members.begin(), members.end(), [&](const CpgMember& m) { return m.node == id; });
    // A membership change means the ring stalled for a while (token loss, consensus):
    // nobody's messages were delivered then, so every member's silence starts over.
    if (p.member) p.last_heard = now;
    // Leases. What this node knows of a node's last state stays exact only for a node that
    // was with it in the previous membership and is gone now (it delivered what that node
    // sent there). For a member, the stall starts its silence over; for a node that was not
    // with it, others may have heard it lately: count from now.
    if (id != self_ && (p.member || !was_member)) p.last_state = std::max(p.last_state, now);
    p.acked.reset();
    p.seq_since_change = 0;
    p.view_in_config.reset();
    p.attested_by.clear();
  }
  // Nothing is decided until every member's table offer is in.
  synced_ = false;
  sync_from_.clear();
  best_offer_.reset();
  pending_assign_.clear();
  // State first: in the agreed order every member's state then precedes its offer, so when
  // the last offer is in, every member's servable set is known.
  send_state();
  send_sync();
  evaluate();
}

json::object ClusterManager::acks() const {
  json::object a;
  for (const auto& [id, p] : peers_) {
    if (id != self_ && p.member && p.last_seq) a[std::to_string(id)] = p.last_seq;
  }
  return a;
}

void ClusterManager::send_state() {
  if (!corosync_ || !corosync_->connected()) return;
  // The send time is taken before the send: the lease it may earn counts from no later
  // than the moment the message could first be delivered.
  uint64_t seq = ++seq_;
  sent_.emplace_back(seq, boot_now_ns());
  while (sent_.size() > 1024) sent_.pop_front();
  json::object m{{"t", "state"},
                 {"node", self_},
                 {"seq", seq},
                 {"view", view_},
                 {"version", version_},
                 {"digest", config_->sha256},
                 {"standby", standby_},
                 {"servable", to_array(servable_)},
                 {"holding", to_array(holding_)},
                 {"leased", to_array(leased_)},
                 {"acks", acks()}};
  corosync_->send(json::serialize(m));
}

uint64_t ClusterManager::send_time(uint64_t seq) const {
  auto it = std::lower_bound(sent_.begin(), sent_.end(), seq,
                             [](const std::pair<uint64_t, uint64_t>& x, uint64_t s) { return x.first < s; });
  return it != sent_.end() && it->first == seq ? it->second : 0;
}

void ClusterManager::read_acks(Peer& sender, const json::object& o) {
  if (sender.id == self_ || !sender.member) return;
  const auto* a = o.if_contains("acks");
  if (!a || !a->is_object()) return;
  const auto* mine = a->get_object().if_contains(std::to_string(self_));
  if (!mine) return;
  auto seq = as_uint(*mine);
  if (!seq || *seq > seq_) return;  // nobody acknowledges what was not sent
  sender.acked = std::max(sender.acked.value_or(0), *seq);
  try_renew();
}

void ClusterManager::try_renew() {
  const Peer* me = peer(self_);
  // Not before this node has the table of the current membership: a node that comes back
  // from a cut the others saw (they proved its lease ran out and moved its VIPs) but its
  // own ring never did still believes it holds them, and the new members' acks would
  // revive its lease until the table told it otherwise. Once synced, evaluate() has
  // released what the table no longer gives it, before any later ack is delivered.
  if (!corosync_->connected() || !quorate_ || !synced_ || !me || me->silent || stopping_) return;
  std::vector<uint64_t> acks;
  size_t fenced = 0;
  for (const auto& [id, p] : peers_) {
    if (id == self_) continue;
    if (p.member && !p.silent && p.acked) {
      acks.push_back(*p.acked);
    } else if (!p.member && p.proven_down) {
      ++fenced;
    }
  }
  size_t need = lease::acks_needed(config_->cluster.nodes.size(), fenced);
  // Nobody else needed (the others are fenced): this node's own state, delivered back.
  std::optional<uint64_t> k = need == 0 ? std::optional<uint64_t>(me->last_seq) : lease::renewable_seq(acks, need);
  if (!k) return;
  uint64_t sent = send_time(*k);
  if (!sent) return;
  uint64_t expiry = sent + to_ns(config_->cluster.timings.lease);
  if (expiry <= lease_until_) return;
  lease_until_ = expiry;
  if (cb_.lease) cb_.lease(expiry);
}

void ClusterManager::expire_lease() {
  if (lease_until_ == 0) return;
  lease_until_ = 0;
  if (cb_.lease) cb_.lease(0);
}

void ClusterManager::on_ring_changed(const std::vector<uint32_t>& ring) {
  // Nothing was delivered while the ring re-formed, so the silence of a node still in the
  // ring means nothing: it starts over (later attestations only; never less safe). A node
  // that dropped out of the ring keeps its count: that is the lost holder.
  auto now = std::chrono::steady_clock::now();
  for (auto& [id, p] : peers_) {
    bool in_ring = std::find(ring.begin(), ring.end(), id) != ring.end();
    if (id != self_ && p.member && in_ring) p.last_state = std::max(p.last_state, now);
  }
}

void ClusterManager::check_leases() {
  if (!corosync_->connected() || stopping_) return;
  const auto wait = config_->cluster.timings.lease + config_->cluster.timings.lease_margin;
  auto now = std::chrono::steady_clock::now();
  auto next = std::chrono::steady_clock::time_point::max();
  // Silence counts only while the ring delivers: this node's own states come back. When
  // the ring stalls (a token lost, a membership forming) nobody is heard, and nobody's
  // silence means anything; the ring change that ends the stall starts it over.
  const auto heartbeat = config_->cluster.timings.heartbeat_interval;
  bool flowing = now - own_delivered_ <= 2 * heartbeat;
  for (auto& [id, p] : peers_) {
    // Only nodes that may hold a leased VIP (or whose state this node has not seen since it
    // joined); one that left cleanly released first.
    if (id == self_ || p.lease_expired || p.proven_down || (p.leased.empty() && p.seen_state) ||
        p.departure == Departure::Clean) {
      continue;
    }
    auto due = p.last_state + wait;
    if (now < due) {
      next = std::min(next, due);
      continue;
    }
    if (p.attested && p.attested_seq == p.last_seq && p.attested_view == view_) continue;
    if (!flowing) continue;  // the next heartbeat looks again
    json::object m{{"t", "lease_expired"}, {"node", id}, {"seq", p.last_seq}, {"view", view_},
                   {"leased", p.seen_state ? json::value(to_array(p.leased)) : json::value(nullptr)}};
    if (!corosync_->send(json::serialize(m))) continue;  // busy: the next heartbeat tries again
    p.attested = true;
    p.attested_seq = p.last_seq;
    p.attested_view = view_;
    spdlog::info("node {}: no state from it for {} ms; attesting that its lease ran out", p.name,
                 std::chrono::duration_cast<std::chrono::milliseconds>(now - p.last_state).count());
  }
  if (next != std::chrono::steady_clock::time_point::max()) {
    // Wake up at the first deadline rather than at the next heartbeat.
    lease_timer_.expires_at(next + std::chrono::milliseconds(1));
    lease_timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) check_leases();
    });
  }
}

void ClusterManager::on_lease_expired(Peer& sender, const json::object& o) {
  auto node = get_uint(o, "node");
  Peer* p = node ? peer(static_cast<uint32_t>(*node)) : nullptr;
  if (!p || p->id == sender.id || !sender.member || p->lease_expired) return;
  // Valid only if the sender had processed this membership (its view matches the one in
  // its latest state sent here) and every state of p delivered here since.
  auto view = get_uint(o, "view");
  auto seq = get_uint(o, "seq").value_or(0);
  if (!lease::attestation_valid(view, sender.view_in_config, seq, p->seq_since_change)) {
    spdlog::debug("ignoring a stale lease attestation about {} from {}", p->name, sender.name);
    return;
  }
  std::optional<std::set<std::string>> saw;
  if (const auto* l = o.if_contains("leased"); l && l->is_array()) saw = get_strings(o, "leased");
  p->attested_by[sender.id] = std::move(saw);
  bool all = std::all_of(peers_.begin(), peers_.end(), [&](const auto& kv) {
    const Peer& m = kv.second;
    return kv.first == p->id || !m.member || m.silent || p->attested_by.count(kv.first);
  });
  if (!all) return;
  // Free what every member that saw its state saw it lease: the same answer everywhere,
  // since it comes from the attestations themselves.
  std::set<std::string> free_now = lease::freed(p->attested_by);
  std::erase_if(free_now, [&](const std::string& v) { return !config_->find_vip(v); });
  p->lease_expired = true;
  p->freed = std::move(free_now);
  std::string vips;
  for (const auto& v : p->freed) vips += (vips.empty() ? "" : ", ") + v;
  spdlog::warn("node {}: its lease ran out (every member attested); its leased VIPs ({}) are free; it is still fenced",
               p->name, vips);
  if (cb_.alert && p->id != self_) {
    cb_.alert("node " + p->name + " stopped renewing its lease; its VIPs (" + vips + ") move once its lease ran out; "
              "it is fenced in the background");
  }
  if (p->member && !p->silent) declare_silent(*p, "its lease ran out");
}

// {"<node id>": ["vip", ...]} in an offer: the configured VIPs, per node id that parses.
std::map<uint32_t, std::set<std::string>> ClusterManager::vips_by_node(const json::object& o, std::string_view key) const {
  std::map<uint32_t, std::set<std::string>> out;
  const auto* field = o.if_contains(key);
  if (!field || !field->is_object()) return out;
  for (const auto& kv : field->get_object()) {
    uint32_t id = 0;
    auto parsed = std::from_chars(kv.key().data(), kv.key().data() + kv.key().size(), id);
    if (parsed.ec != std::errc{} || !kv.value().is_array()) continue;
    json::object one{{"v", kv.value()}};
    for (const auto& name : get_strings(one, "v")) {
      if (config_->find_vip(name)) out[id].insert(name);
    }
  }
  return out;
}

void ClusterManager::send_sync() {
  json::object owners;
  for (const auto& [vip, id] : owners_) owners[vip] = id;
  std::set<uint32_t> proven, silent;
  for (const auto& [id, p] : peers_) {
    if (p.proven_down) proven.insert(id);
    if (p.silent) silent.insert(id);
  }
  // The recent fence history travels with the table, so a node that joins learns who was
  // fenced before it came (Pacemaker's fencers sync their history the same way).
  json::array history;
  size_t skip = history_.size() > kSyncedHistory ? history_.size() - kSyncedHistory : 0;
  for (size_t i = skip; i < history_.size(); ++i) {
    const config::Node* n = config_->find_node(history_[i].target);
    if (n) history.push_back(event_to_json(history_[i], n->id));
  }
  // Nodes whose lease provably ran out, with the VIPs that freed: a joining node has not
  // seen their states.
  json::object freed;
  for (const auto& [id, p] : peers_) {
    if (p.lease_expired) freed[std::to_string(id)] = to_array(p.freed);
  }
  // Lost nodes that may still hold a VIP: a joiner has not seen their states either.
  json::object may_hold;
  for (const auto& [id, p] : peers_) {
    if (id == self_ || p.member || p.proven_down || p.may_hold.empty()) continue;
    std::set<std::string> vips;
    for (const auto& v : p.may_hold) {
      if (!p.freed.count(v)) vips.insert(v);
    }
    if (!vips.empty()) may_hold[std::to_string(id)] = to_array(vips);
  }
  json::object m{{"t", "sync"}, {"version", version_}, {"owners", std::move(owners)},
                 {"proven", to_array(proven)}, {"silent", to_array(silent)}, {"freed", std::move(freed)},
                 {"may_hold", std::move(may_hold)}, {"history", std::move(history)}};
  if (!corosync_->send(json::serialize(m))) spdlog::debug("table offer not sent (Corosync busy); offering again");
}

void ClusterManager::heartbeat() {
  if (stopping_) return;
  send_state();
  // An offer can be refused while the ring re-forms (CS_ERR_TRY_AGAIN): offer again until
  // every member's offer is in. Repeated offers change nothing.
  if (corosync_->connected() && !synced_) send_sync();
  flush_outbox();
  check_liveness();
  check_leases();
  heartbeat_timer_.expires_after(config_->cluster.timings.heartbeat_interval);
  heartbeat_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) heartbeat();
  });
}

void ClusterManager::check_liveness() {
  if (!corosync_->connected() || !synced_) return;
  // Silence is measured on the ordered stream, not on the wall clock: a member is silent
  // when this node's own heartbeats kept being delivered while the member's did not. When
  // the ring stalls (a member's machine froze and the token is being regenerated), no one's
  // messages arrive, and no one is declared silent for it.
  const Peer* me = peer(self_);
  if (!me) return;
  for (auto& [id, p] : peers_) {
    if (id == self_ || !p.member || p.silent) continue;
    if (me->last_heard - p.last_heard > config_->cluster.timings.liveness_timeout) {
      // Any member may say it; the first delivery decides, the same for everyone.
      json::object m{{"t", "silent"}, {"node", id}};
      corosync_->send(json::serialize(m));
    }
  }
}

void ClusterManager::on_message(const CpgMember& from, const std::string& payload) {
  boost::system::error_code ec;
  json::value v = json::parse(payload, ec);
  if (ec || !v.is_object()) {
    spdlog::warn("ignoring a malformed cluster message from node {}", from.node);
    return;
  }
  const json::object& o = v.get_object();
  auto type = get_string(o, "t");
  Peer* sender = peer(from.node);
  if (!type || !sender) return;
  sender->last_heard = std::chrono::steady_clock::now();

  if (*type == "state") {
    sender->seen_state = true;
    sender->digest = get_string(o, "digest").value_or("");
    sender->standby = get_bool(o, "standby");
    sender->servable = get_strings(o, "servable");
    sender->holding = get_strings(o, "holding");
    // Sent at this node's table version (or later): it has seen every assign this node
    // has, so what it says it holds is all it may hold. Sent earlier: an assign to it may
    // still be acted on.
    if (get_uint(o, "version").value_or(0) >= version_) {
      sender->may_hold = sender->holding;
    } else {
      sender->may_hold.insert(sender->holding.begin(), sender->holding.end());
    }
    uint64_t seq = get_uint(o, "seq").value_or(0);
    sender->last_seq = seq;
    sender->seq_since_change = seq;
    sender->view_in_config = get_uint(o, "view");
    sender->leased = get_strings(o, "leased");
    sender->attested_by.clear();  // it was heard after those attestations
    if (sender->id != self_) {
      sender->last_state = std::chrono::steady_clock::now();
      sender->attested = false;
      // Its renewal waits for acknowledgements: give this one now rather than with the
      // next heartbeat, when it holds a leased VIP.
      bool holds_leased = std::any_of(sender->holding.begin(), sender->holding.end(),
                                      [&](const std::string& h) { return sender->leased.count(h) > 0; });
      if (holds_leased && !stopping_ && sender->member) {
        corosync_->send(json::serialize(json::object{{"t", "ack"}, {"acks", acks()}}));
      }
    } else {
      own_delivered_ = std::chrono::steady_clock::now();
      try_renew();  // a node alone (the others fenced) renews from its own state
    }
    read_acks(*sender, o);
  } else if (*type == "ack") {
    read_acks(*sender, o);
    return;  // changes nothing else
  } else if (*type == "lease_expired") {
    on_lease_expired(*sender, o);
  } else if (*type == "sync") {
    if (!sender->member) return;
    Offer offer;
    offer.version = get_uint(o, "version").value_or(0);
    offer.from = from.node;
    if (const auto* ow = o.if_contains("owners"); ow && ow->is_object()) {
      for (const auto& kv : ow->get_object()) {
        auto id = as_id(kv.value());
        if (id && peer(*id) && config_->find_vip(kv.key())) offer.owners[std::string(kv.key())] = *id;
      }
    }
    offer.proven = get_ids(o, "proven");
    offer.silent = get_ids(o, "silent");
    for (auto& [id, vips] : vips_by_node(o, "freed")) {
      if (peer(id)) offer.freed[id] = std::move(vips);
    }
    // What a lost node may hold counts from every offer, not only the best: knowing it
    // only blocks, and the node itself is not here to say otherwise.
    for (const auto& [id, vips] : vips_by_node(o, "may_hold")) {
      Peer* p = peer(id);
      if (p && id != self_ && !p->member) p->may_hold.insert(vips.begin(), vips.end());
    }
    if (const auto* hv = o.if_contains("history"); hv && hv->is_array()) {
      size_t taken = 0;
      for (const auto& x : hv->get_array()) {
        if (!x.is_object() || ++taken > kSyncedHistory) continue;
        const json::value* node_value = x.get_object().if_contains("node");
        std::optional<uint32_t> id;
        if (node_value) id = as_id(*node_value);
        auto result = get_string(x.get_object(), "result");
        if (!id || !peer(*id) || !result || (*result != "off" && *result != "failed" && *result != "confirmed")) continue;
        FenceEvent e = event_from_json(x.get_object());
        e.target = peer(*id)->name;
        e.result = *result;
        merge_history(std::move(e));
      }
    }
    if (!best_offer_ || offer.version > best_offer_->version ||
        (offer.version == best_offer_->version && offer.from < best_offer_->from)) {
      best_offer_ = offer;
    }
    sync_from_.insert(from.node);
    // A member declared silent (its daemon is paused or hung) offers nothing: waiting for it
    // would leave the partition without a table, and its VIPs dark, until it is fenced.
    bool all = std::all_of(peers_.begin(), peers_.end(), [&](const auto& kv) {
      return !kv.second.member || kv.second.silent || sync_from_.count(kv.first);
    });
    if (all && !synced_) {
      version_ = best_offer_->version;
      owners_ = best_offer_->owners;
      for (auto& [id, p] : peers_) {
        // Joiners were reset when they joined, before any offer was made, so every offer
        // already reflects that; a fresh member learns here what the others knew.
        p.proven_down = p.proven_down || best_offer_->proven.count(id) > 0;
        p.silent = p.silent || best_offer_->silent.count(id) > 0;
        if (auto f = best_offer_->freed.find(id); f != best_offer_->freed.end() && !p.lease_expired) {
          p.lease_expired = true;
          p.freed = f->second;
        }
      }
      synced_ = true;
      spdlog::info("cluster table synced: version {}, {} owner(s)", version_, owners_.size());
      // Release what the table no longer gives this node first, then renew from the acks
      // gathered while the offers came in (try_renew waits for the sync).
      evaluate();
      try_renew();
      return;
    }
  } else if (*type == "assign") {
    // Only the coordinator assigns. Who that is follows from the ordered stream, so every
    // member accepts or ignores the same assigns.
    if (coordinator_id() != from.node) {
      spdlog::warn("ignoring an assignment from {}, which is not the coordinator", sender->name);
      return;
    }
    // node 0 means nobody; any other id must be a configured node.
    auto vip = get_string(o, "vip");
    const auto* node_value = o.if_contains("node");
    auto node = node_value ? as_uint(*node_value) : std::nullopt;
    Peer* owner = node && *node != 0 ? (as_id(*node_value) ? peer(static_cast<uint32_t>(*node)) : nullptr) : nullptr;
    if (!vip || !node || !config_->find_vip(*vip) || (*node != 0 && !owner)) {
      spdlog::warn("ignoring a malformed assignment from {}", sender->name);
      return;
    }
    pending_assign_.erase(*vip);
    // The owner it replaces may still act on the assign that made it the owner: its state
    // at that version may have said "not holding" while it waited for the holder before
    // it, and it may acquire once that one's release reaches it. It may hold until a state
    // of it at the new version says otherwise (model/lease.pml found the double holder
    // after two moves in a row without this).
    if (auto prev = owners_.find(*vip); prev != owners_.end() && prev->second != self_) {
      if (Peer* p = peer(prev->second)) p->may_hold.insert(*vip);
    }
    if (owner) {
      owners_[*vip] = owner->id;
      if (owner->id != self_) owner->may_hold.insert(*vip);  // until a state of it at this version
    } else {
      owners_.erase(*vip);
    }
    ++version_;
    spdlog::info("VIP {} assigned to {}", *vip, owner ? owner->name : "nobody");
    send_state();  // this node's state at the new version: what a new owner waits for
  } else if (*type == "fenced" || *type == "fence_failed") {
    auto node = get_uint(o, "node");
    Peer* p = node ? peer(static_cast<uint32_t>(*node)) : nullptr;
    if (!p) return;
    FenceEvent e = event_from_json(o);
    e.target = p->name;
    bool ok = *type == "fenced";
    e.result = !ok ? "failed" : e.executor == "operator" ? "confirmed" : "off";
    if (e.finished_ms == 0) {
      e.finished_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
    }
    record(e);
    if (!ok) {
      manual_fence_.erase(p->id);  // an operator's request is one attempt; a lost node is retried
      spdlog::error("fencing {} failed (executor {}): {}", p->name, e.executor, e.reason);
      if (fence_failure_alerted_.insert(p->id).second && cb_.alert) {
        cb_.alert("fencing " + p->name + " failed; VIPs it held stay down until it is fenced: " + e.reason);
      }
      evaluate();
      return;
    }
    manual_fence_.erase(p->id);
    fence_retry_at_.erase(p->id);
    fence_failure_alerted_.erase(p->id);
    std::string how = e.result == "confirmed" ? "confirmed by an operator"
                                              : "by " + e.executor + " at level " + std::to_string(e.level) + " (" +
                                                    [&] {
                                                      std::string d;
                                                      for (const auto& x : e.devices) d += (d.empty() ? "" : ", ") + x;
                                                      return d;
                                                    }() + ")";
    if (p->member && !p->silent) {
      // A live member cannot be proven down: when it really was powered off, its
      // departure follows and the plan fences it again (a cheap "already off").
      if (p->id == self_) {
        spdlog::error("a fence device reported this node off ({}), but it is running: check the device and plug mapping",
                      how);
        if (cb_.alert) cb_.alert("node " + p->name + " was reported fenced " + how + " but is still running: "
                                 "check that fence device's mapping");
      } else {
        spdlog::warn("node {} fenced {}, still a member: proof waits for its departure", p->name, how);
      }
      evaluate();
      return;
    }
    p->proven_down = true;
    spdlog::warn("node {} is proven down: fenced {}", p->name, how);
    if (cb_.alert) cb_.alert("node " + p->name + " fenced " + how);
  } else if (*type == "fence_request") {
    auto node = get_uint(o, "node");
    Peer* p = node ? peer(static_cast<uint32_t>(*node)) : nullptr;
    if (!p) return;
    spdlog::warn("{} asked to fence node {}", sender->name, p->name);
    manual_fence_.insert(p->id);
    fence_retry_at_.erase(p->id);
  } else if (*type == "standby") {
    auto node = get_uint(o, "node");
    if (node && *node == self_ && cb_.standby_requested) {
      bool on = get_bool(o, "on");
      spdlog::info("{} asked this node to {} standby", sender->name, on ? "enter" : "leave");
      cb_.standby_requested(on);
    }
  } else if (*type == "silent") {
    auto node = get_uint(o, "node");
    Peer* p = node ? peer(static_cast<uint32_t>(*node)) : nullptr;
    if (!p || p->silent) return;
    declare_silent(*p, "its daemon stopped heartbeating");
    if (p->id == self_) return;
  }
  evaluate();
}

void ClusterManager::declare_silent(Peer& p, const std::string& why) {
  p.silent = true;
  spdlog::warn("node {} is silent: {}", p.name, why);
  if (p.id != self_) return;
  // The others gave up on this daemon (it was paused or hung). Let go of everything now
  // (the release deletes the addresses before returning), say so, then leave and rejoin
  // as a fresh member: the others see a clean leave that follows the release.
  expire_lease();
  release_all("the cluster declared this daemon silent (" + why + ")");
  if (cb_.alert) cb_.alert("this node was declared silent by the cluster (" + why + "); it released its VIPs and rejoins");
  holding_.clear();
  send_state();
  asio::post(io_, [this] {
    corosync_->stop();
    corosync_->start();
  });
}

std::string ClusterManager::cluster_digest() const {
  std::map<std::string, std::pair<size_t, uint32_t>> votes;  // digest -> (count, lowest id)
  for (const auto& [id, p] : peers_) {
    if (!p.member || !p.seen_state) continue;
    auto& v = votes[p.digest];
    if (v.first++ == 0) v.second = id;
  }
  std::string best;
  std::pair<size_t, uint32_t> best_vote{0, 0};
  for (const auto& [digest, vote] : votes) {
    if (vote.first > best_vote.first || (vote.first == best_vote.first && vote.second < best_vote.second)) {
      best = digest;
      best_vote = vote;
    }
  }
  return best.empty() ? config_->sha256 : best;
}

bool ClusterManager::config_match(const Peer& p) const {
  if (p.id == self_) return config_->sha256 == cluster_digest();
  return !p.seen_state || p.digest == cluster_digest();
}

View ClusterManager::view() const {
  View v;
  v.quorate = quorate_;
  for (const auto& [id, p] : peers_) {
    NodeView n;
    n.id = id;
    n.name = p.name;
    n.member = p.member;
    n.alive = !p.silent;
    n.standby = p.standby;
    n.config_match = config_match(p);
    n.servable = p.seen_state ? p.servable : std::set<std::string>{};
    n.departure = p.departure;
    n.proven_down = p.proven_down;
    if (p.lease_expired) n.lease_freed = p.freed;
    v.nodes.push_back(std::move(n));
  }
  v.owners = owners_;
  return v;
}

Policy ClusterManager::policy() const {
  Policy p;
  for (const auto& vip : config_->vips) {
    VipPolicy vp;
    vp.name = vip.name;
    vp.failback = vip.failback;
    for (const auto& name : vip.prefer) {
      if (const config::Node* n = config_->find_node(name)) vp.prefer.push_back(n->id);
    }
    p.vips.push_back(std::move(vp));
  }
  return p;
}

std::optional<uint32_t> ClusterManager::coordinator_id() const {
  for (const auto& [id, p] : peers_) {
    // peers_ is ordered by id; a node running another config never coordinates.
    if (p.member && !p.silent && config_match(p)) return id;
  }
  return std::nullopt;
}

bool ClusterManager::coordinator() const { return coordinator_id() == self_; }

void ClusterManager::evaluate() {
  if (stopping_) return;
  plan_ = decide(view(), policy());
  const Peer* me = peers_.count(self_) ? &peers_.at(self_) : nullptr;
  bool able = corosync_->connected() && quorate_ && synced_ && me && !me->silent && config_match(*me);
  // The coordinator changes ownership only once it knows what every member advertises: a
  // member whose state has not arrived yet (it just joined, or its send was refused) would
  // look unable to serve, and its VIPs would move for nothing.
  bool states_known = std::all_of(peers_.begin(), peers_.end(),
                                  [](const auto& kv) { return !kv.second.member || kv.second.seen_state; });
  if (able && coordinator() && states_known) {
    for (const auto& p : plan_.vips) {
      if (p.blocked) continue;
      auto cur = owners_.find(p.vip);
      uint32_t want_owner = p.owner.value_or(0);
      uint32_t have_owner = cur == owners_.end() ? 0 : cur->second;
      if (want_owner == have_owner) continue;
      auto pend = pending_assign_.find(p.vip);
      if (pend != pending_assign_.end() && pend->second == want_owner) continue;
      json::object m{{"t", "assign"}, {"vip", p.vip}, {"node", want_owner}};
      if (corosync_->send(json::serialize(m))) pending_assign_[p.vip] = want_owner;
    }
  }
  // This node's own decision: hold a VIP only when the table names it and nobody else
  // still advertises holding it. While the members exchange tables after a membership
  // change, keep what is held: a node joining must not make the holder blink. Quorum
  // loss, a lost Corosync and being declared silent release at once (elsewhere).
  bool may_hold = corosync_->connected() && quorate_ && me && !me->silent;
  drive_fencing(able, may_hold);
  if (may_hold && !synced_) return;
  for (const auto& vip : config_->vips) {
    bool hold = false;
    if (able) {
      auto it = owners_.find(vip.name);
      if (it != owners_.end() && it->second == self_) {
        hold = std::none_of(peers_.begin(), peers_.end(), [&](const auto& kv) {
          // Members and lost nodes alike, until proven down; a node whose lease provably ran
          // out no longer answers for its leased VIPs; one that left cleanly released
          // everything and expired its leases first, and acts on no assign after that.
          const Peer& p = kv.second;
          bool left_cleanly = !p.member && p.departure == Departure::Clean;
          return kv.first != self_ && p.may_hold.count(vip.name) && !p.proven_down && !left_cleanly &&
                 !p.freed.count(vip.name);
        });
        if (!hold) spdlog::debug("VIP {}: waiting for the previous holder to release it", vip.name);
      }
    }
    if (wanted_[vip.name] != hold) {
      wanted_[vip.name] = hold;
      if (cb_.want) cb_.want(vip.name, hold);
    }
  }
}

ClusterManager::Snapshot ClusterManager::snapshot() const {
  Snapshot s;
  s.connected = corosync_->connected();
  s.quorate = quorate_;
  s.coordinator = coordinator_id();
  s.lease_until_ns = lease_until_;
  for (const NodeView& v : view().nodes) {
    const char* departure = v.departure == Departure::Clean ? "clean" : v.departure == Departure::Unclean ? "unclean" : "";
    s.nodes.push_back({v.name, v.id, v.member, v.alive, v.standby, v.config_match, v.proven_down, departure,
                       !v.lease_freed.empty() || peers_.at(v.id).lease_expired});
  }
  for (const auto& [vip, id] : owners_) {
    auto it = peers_.find(id);
    s.owners[vip] = it == peers_.end() ? std::to_string(id) : it->second.name;
  }
  for (const auto& p : plan_.vips) s.reasons[p.vip] = p.reason;
  for (uint32_t id : plan_.fence) {
    auto it = peers_.find(id);
    if (it != peers_.end()) s.fence.push_back(it->second.name);
  }
  s.alerts = plan_.alerts;
  for (uint32_t id : fencing_) {
    auto it = peers_.find(id);
    if (it != peers_.end()) s.fencing.push_back(it->second.name);
  }
  return s;
}

}  // namespace hafront::cluster
