#include "health/monitor.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <algorithm>

#include "health/writer.h"

namespace hafront::health {
namespace {

using std::chrono::milliseconds;

// FNV-1a: a stable seed per server name, so the same server keeps its place in the spread.
uint64_t name_hash(const std::string& service, const std::string& server) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const std::string* part : {&service, &server}) {
    for (char c : *part) {
      h ^= static_cast<uint8_t>(c);
      h *= 0x100000001b3ULL;
    }
    h ^= '/';
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::string ms_text(milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

Evidence evidence_of(const Observation& o) {
  Evidence e;
  e.http_status = o.http_status;
  e.body_excerpt = o.body_excerpt.substr(0, 256);
  if (o.galera) {
    e.wsrep_local_state = o.galera->local_state;
    e.wsrep_state_comment = o.galera->local_state_comment.value_or("");
    e.wsrep_cluster_status = o.galera->cluster_status.value_or("");
    e.wsrep_last_committed = o.galera->last_committed;
  }
  e.exit_code = o.exit_code;
  e.duration_ms = o.duration.count();
  return e;
}

}  // namespace

struct HealthMonitor::Entry {
  std::string service;
  std::string server;
  config::Server config;
  std::optional<config::Check> check;
  config::PassiveOptions passive;
  milliseconds connect_timeout{5000};

  CheckCounters counters;
  std::optional<Observation> last;
  int64_t last_ms = 0;

  std::unique_ptr<Probe> probe;
  uint64_t generation = 0;
  bool probe_is_check = false;  // false: a TCP connect for re-admission (no check configured)
  SteadyTime probe_started{};
  std::optional<SteadyTime> next_at;  // set through set_next() only
  uint64_t schedule_generation = 0;
  std::mt19937_64 rng;

  bool ejected = false;
  std::string ejected_reason;
  SteadyTime ejected_until{};
  int64_t ejected_until_ms = 0;
  milliseconds backoff{0};
  uint32_t ejections = 0;
  std::optional<SteadyTime> readmitted_at;
  uint32_t connect_streak = 0;
  uint32_t reset_streak = 0;
  std::deque<SteadyTime> recent_5xx;
  uint64_t connects_seen = 0;
  uint64_t answers_seen = 0;

  std::optional<ServerState> agent_state;
  std::optional<uint32_t> agent_weight_percent;
  std::string agent_message;
  AdminState admin = AdminState::None;

  ServerState state = ServerState::Unknown;
  std::string reason;
  uint32_t weight = 1;
  int64_t since_ms = 0;
  bool writer = false;
  ServiceState* pool = nullptr;
  // Single-writer pools: its checks in a row that found it eligible / ineligible to write.
  uint32_t writer_ok_streak = 0;
  uint32_t writer_bad_streak = 0;
};

struct HealthMonitor::ServiceState {
  std::string name;
  bool single_writer = false;
  bool mysql = false;
  std::vector<Entry*> servers;
  std::optional<std::string> writer;
  std::string writer_reason;
};

HealthMonitor::HealthMonitor(boost::asio::io_context& io, Options options)
    : io_(io), options_(std::move(options)), timer_(io) {
  if (!options_.now) options_.now = [] { return std::chrono::steady_clock::now(); };
  if (!options_.wall_ms) {
    options_.wall_ms = [] {
      return std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    };
  }
}

HealthMonitor::~HealthMonitor() {
  *alive_ = false;
  stop();
}

SteadyTime HealthMonitor::now() const { return options_.now(); }
int64_t HealthMonitor::wall() const { return options_.wall_ms(); }

void HealthMonitor::stop() {
  stopped_ = true;
  timer_.cancel();
  armed_at_.reset();
  for (auto& [key, e] : entries_) {
    if (e->probe) e->probe->cancel();
    e->probe.reset();
  }
}

void HealthMonitor::configure(std::shared_ptr<const config::Config> config) {
  config_ = std::move(config);
  stopped_ = false;
  const SteadyTime t = now();
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Entry>> next;
  std::vector<ServiceState> services;
  for (const config::Service& svc : config_->services) {
    std::optional<config::Check> check;
    if (svc.check) {
      if (const config::Check* c = config_->find_check(*svc.check)) check = *c;
    }
    ServiceState pool;
    pool.name = svc.name;
    pool.single_writer = svc.balance == config::Balance::SingleWriter;
    pool.mysql = check && check->kind == config::CheckKind::Mysql;
    for (const auto& old : services_) {
      if (old.name == svc.name && pool.single_writer) {
        pool.writer = old.writer;
        pool.writer_reason = old.writer_reason;
      }
    }
    for (const config::Server& srv : svc.servers) {
      auto key = std::make_pair(svc.name, srv.name);
      std::unique_ptr<Entry> e;
      if (auto it = entries_.find(key); it != entries_.end()) {
        if (it->second->config.address == srv.address && it->second->check == check) {
          e = std::move(it->second);
        } else {
          // Replaced: only the operator's word stays.
          AdminState admin = it->second->admin;
          if (it->second->probe) it->second->probe->cancel();
          e = std::make_unique<Entry>();
          e->admin = admin;
        }
        entries_.erase(it);
      } else {
        e = std::make_unique<Entry>();
      }
      const bool fresh = e->service.empty();
      e->service = svc.name;
      e->server = srv.name;
      e->config = srv;
      e->check = check;
      e->passive = svc.passive;
      e->connect_timeout = svc.timeouts.connect;
      if (fresh) {
        e->rng.seed(name_hash(svc.name, srv.name) ^ options_.seed);
        e->since_ms = wall();
        e->counters = {};
        if (check) {
          // The first check of each server somewhere within the first fast_interval.
          auto spread = std::max<int64_t>(1, std::min(check->fast_interval, check->interval).count());
          e->next_at = t + milliseconds(static_cast<int64_t>(e->rng() % static_cast<uint64_t>(spread)));
        }
      }
      pool.servers.push_back(e.get());
      next.emplace(key, std::move(e));
    }
    services.push_back(std::move(pool));
  }
  for (auto& [key, e] : entries_) {
    if (e->probe) e->probe->cancel();
  }
  entries_ = std::move(next);
  services_ = std::move(services);
  for (ServiceState& pool : services_) {
    for (Entry* e : pool.servers) e->pool = &pool;
  }
  rebuild_schedule();
  recompute();
  arm();
}

void HealthMonitor::set_next(Entry& e, std::optional<SteadyTime> at) {
  e.next_at = at;
  ++e.schedule_generation;
  if (at) schedule_.push(Due{*at, &e, e.schedule_generation});
}

void HealthMonitor::rebuild_schedule() {
  schedule_ = {};
  for (auto& [key, e] : entries_) set_next(*e, e->next_at);
}

std::string HealthMonitor::set_admin(const std::string& service, const std::string& server, AdminState state) {
  auto it = entries_.find({service, server});
  if (it == entries_.end()) {
    bool known_service = std::any_of(services_.begin(), services_.end(),
                                     [&](const ServiceState& s) { return s.name == service; });
    return known_service ? "service " + service + " has no server '" + server + "'"
                         : "no service '" + service + "'";
  }
  Entry& e = *it->second;
  if (e.admin != state) {
    spdlog::info("health: {}/{}: operator set {}", service, server,
                 state == AdminState::None ? "ready" : to_string(state));
    e.admin = state;
    recompute(e);
  }
  return "";
}

void HealthMonitor::on_passive(const std::string& service, const std::string& server, PassiveKind kind,
                               const std::string& detail, uint64_t successes) {
  auto it = entries_.find({service, server});
  if (it == entries_.end() || stopped_) return;
  Entry& e = *it->second;
  // An operator's decision stands; an ejected server is already out.
  if (e.admin != AdminState::None || e.ejected) return;
  const SteadyTime t = now();
  if (kind == PassiveKind::Http5xx) {
    if (successes > e.answers_seen) {
      e.answers_seen = successes;
      e.recent_5xx.clear();
    }
  } else if (successes > e.connects_seen) {
    e.connects_seen = successes;
    e.connect_streak = 0;
    e.reset_streak = 0;
  }
  const config::PassiveOptions& p = e.passive;
  switch (kind) {
    case PassiveKind::ConnectFailure:
      ++e.connect_streak;
      if (p.connect_failures > 0 && e.connect_streak >= p.connect_failures) {
        eject(e, detail + " seen by the proxy (" + std::to_string(e.connect_streak) + " in a row)", t);
      }
      break;
    case PassiveKind::Reset:
      ++e.reset_streak;
      if (p.resets > 0 && e.reset_streak >= p.resets) {
        eject(e, detail + " seen by the proxy (" + std::to_string(e.reset_streak) + " in a row)", t);
      }
      break;
    case PassiveKind::Http5xx:
      e.recent_5xx.push_back(t);
      while (!e.recent_5xx.empty() && e.recent_5xx.front() + p.window <= t) e.recent_5xx.pop_front();
      // Bounded: only the last `http_5xx` times matter.
      while (e.recent_5xx.size() > std::max<uint32_t>(p.http_5xx, 1)) e.recent_5xx.pop_front();
      if (p.http_5xx > 0 && e.recent_5xx.size() >= p.http_5xx) {
        eject(e, std::to_string(e.recent_5xx.size()) + " " + detail + " answers within " + ms_text(p.window), t);
      }
      break;
  }
}

void HealthMonitor::eject(Entry& e, const std::string& why, SteadyTime t) {
  const config::PassiveOptions& p = e.passive;
  // A server that stayed in for max_backoff since its last re-admission starts over.
  if (!e.readmitted_at || t - *e.readmitted_at >= p.max_backoff) e.ejections = 0;
  milliseconds backoff = p.backoff;
  for (uint32_t i = 0; i < e.ejections && backoff < p.max_backoff; ++i) backoff *= 2;
  e.backoff = std::min(backoff, p.max_backoff);
  ++e.ejections;
  e.ejected = true;
  e.ejected_until = t + e.backoff;
  e.ejected_until_ms = wall() + e.backoff.count();
  e.ejected_reason = "ejected: " + why + "; re-checked after " + ms_text(e.backoff);
  e.connect_streak = e.reset_streak = 0;
  e.recent_5xx.clear();
  spdlog::warn("health: {}/{} {} (ejection {})", e.service, e.server, e.ejected_reason, e.ejections);
  if (!e.next_at || *e.next_at > e.ejected_until) set_next(e, e.ejected_until);
  recompute(e);
  arm();
}

SteadyTime HealthMonitor::jittered(Entry& e, SteadyTime from, milliseconds base) {
  uint32_t pct = e.check ? e.check->jitter_percent : 0;
  int64_t span = base.count() * pct / 100;
  int64_t delta = 0;
  if (span > 0) {
    delta = static_cast<int64_t>(e.rng() % static_cast<uint64_t>(2 * span + 1)) - span;
  }
  return from + milliseconds(std::max<int64_t>(1, base.count() + delta));
}

void HealthMonitor::schedule_next(Entry& e, SteadyTime t) {
  std::optional<SteadyTime> at;
  if (e.check) at = jittered(e, t, changing(e.counters) ? e.check->fast_interval : e.check->interval);
  if (e.ejected && (!at || *at > e.ejected_until)) at = std::max(e.ejected_until, t);
  set_next(e, at);
}

void HealthMonitor::start_probe(Entry& e, SteadyTime t) {
  ProbeTarget target{e.service, e.server, e.config.address};
  config::Check tcp;
  const config::Check* check = e.check ? &*e.check : nullptr;
  if (!check) {
    // No check configured: a plain TCP connect decides a re-admission.
    tcp.name = "(re-admission)";
    tcp.kind = config::CheckKind::Tcp;
    tcp.timeout = std::min<milliseconds>(e.connect_timeout, milliseconds(5000));
    tcp.interval = std::max(tcp.timeout, milliseconds(1));
    check = &tcp;
  }
  uint64_t generation = ++e.generation;
  e.probe_is_check = e.check.has_value();
  e.probe_started = t;
  set_next(e, std::nullopt);
  ++probes_started_;
  Entry* entry = &e;
  if (options_.probe) {
    e.probe = options_.probe(io_, *check, target, [this, entry, generation](Observation o) {
      on_observation(*entry, generation, std::move(o));
    });
  }
  if (!e.probe) schedule_next(e, t + milliseconds(1));  // could not start: try again later
}

void HealthMonitor::on_observation(Entry& e, uint64_t generation, Observation obs) {
  if (generation != e.generation || !e.probe || stopped_) return;
  // The probe called us: it is destroyed after it returns, not from inside its own call.
  boost::asio::post(io_, [p = std::shared_ptr<Probe>(std::move(e.probe))] {});
  const SteadyTime t = now();
  e.last_ms = wall();
  if (e.probe_is_check) {
    HysteresisStep step = apply_check(e.counters, e.check->rise, e.check->fall, obs.ok);
    if (step.transition) {
      spdlog::info("health: {}/{} check {} -> {}: {}", e.service, e.server, to_string(e.counters.state),
                   to_string(*step.transition), obs.reason.empty() ? "no reason given" : obs.reason);
    }
    e.counters = step.next;
    if (obs.agent) {
      if (obs.agent->state) {
        // up / ready clear what the agent asked before; down, drain, maint hold until then.
        e.agent_state = *obs.agent->state == ServerState::Up ? std::nullopt : obs.agent->state;
      }
      if (obs.agent->weight_percent) e.agent_weight_percent = *obs.agent->weight_percent;
      e.agent_message = obs.agent->message;
    }
  }
  if (e.ejected && e.probe_started >= e.ejected_until) {
    if (obs.ok) {
      spdlog::info("health: {}/{} re-admitted: a check passed after its {} back-off ({})", e.service, e.server,
                   ms_text(e.backoff), obs.reason);
      e.ejected = false;
      e.readmitted_at = t;
      e.ejected_reason.clear();
    } else {
      e.backoff = std::min(e.backoff * 2, e.passive.max_backoff);
      e.ejected_until = t + e.backoff;
      e.ejected_until_ms = wall() + e.backoff.count();
      std::string why = e.ejected_reason.substr(0, e.ejected_reason.find("; re-checked"));
      e.ejected_reason = why + "; re-admission check failed (" + (obs.reason.empty() ? "no reason" : obs.reason) +
                         "), next after " + ms_text(e.backoff);
    }
  }
  if (e.pool && e.pool->single_writer && e.probe_is_check) {
    bool eligible = obs.ok && (!e.pool->mysql || (obs.galera && why_not_writable(*obs.galera).empty()));
    e.writer_ok_streak = eligible ? e.writer_ok_streak + 1 : 0;
    e.writer_bad_streak = eligible ? 0 : e.writer_bad_streak + 1;
  }
  e.last = std::move(obs);
  schedule_next(e, t);
  recompute(e);
  arm();
}

std::optional<SteadyTime> HealthMonitor::poll() {
  if (stopped_) return std::nullopt;
  const SteadyTime t = now();
  auto current = [](const Due& d) { return d.generation == d.entry->schedule_generation; };
  // Take what is due off the heap first: starting a probe may run a completion, and with it
  // this function again, which must find the heap consistent.
  std::vector<Entry*> due;
  while (!schedule_.empty() && (!current(schedule_.top()) || schedule_.top().at <= t)) {
    if (current(schedule_.top())) due.push_back(schedule_.top().entry);
    schedule_.pop();
  }
  for (Entry* e : due) {
    // A server whose probe still runs is scheduled again when its result comes in.
    if (!e->probe && e->next_at && *e->next_at <= t) start_probe(*e, t);
  }
  while (!schedule_.empty() && !current(schedule_.top())) schedule_.pop();
  if (schedule_.empty()) return std::nullopt;
  return schedule_.top().at;
}

void HealthMonitor::arm() {
  if (!options_.timers || stopped_) return;
  auto next = poll();
  if (!next) {
    if (armed_at_) timer_.cancel();
    armed_at_.reset();
    return;
  }
  if (armed_at_ && *armed_at_ == *next) return;
  armed_at_ = next;
  timer_.expires_at(*next);
  timer_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](boost::system::error_code ec) {
    if (ec || alive.expired() || stopped_) return;
    armed_at_.reset();
    arm();
  });
}

struct HealthMonitor::Effective {
  ServerState state = ServerState::Unknown;
  std::string reason;
  uint32_t weight = 0;
};

// The state in effect of one server, before the writer choice: operator, agent, ejection,
// check, in that order.
HealthMonitor::Effective HealthMonitor::effective(const Entry& e) {
  Effective x;
  auto with_message = [&](std::string text) {
    return e.agent_message.empty() ? text : text + " (" + e.agent_message + ")";
  };
  if (e.admin == AdminState::Maint) {
    x = {ServerState::Maint, "maint: set by an operator"};
  } else if (e.agent_state == ServerState::Maint) {
    x = {ServerState::Maint, with_message("maint: the agent check says so")};
  } else if (e.admin == AdminState::Drain) {
    x = {ServerState::Drain, "drain: set by an operator"};
  } else if (e.agent_state == ServerState::Drain) {
    x = {ServerState::Drain, with_message("drain: the agent check says so")};
  } else if (e.ejected) {
    x = {ServerState::Down, e.ejected_reason};
  } else if (e.agent_state == ServerState::Down) {
    x = {ServerState::Down, with_message("the agent check says down")};
  } else if (e.check) {
    x.state = e.counters.state;
    const std::string last = e.last && e.probe_is_check ? e.last->reason : std::string();
    if (x.state == ServerState::Unknown) {
      x.reason = "not checked yet";
    } else if (e.counters.failures > 0) {
      x.reason = last + " (" + std::to_string(e.counters.failures) + " of " + std::to_string(e.check->fall) +
                 " failed checks before down)";
    } else if (e.counters.successes > 0) {
      x.reason = last + " (" + std::to_string(e.counters.successes) + " of " + std::to_string(e.check->rise) +
                 " passed checks before up)";
    } else {
      x.reason = last.empty() ? (x.state == ServerState::Up ? "check passed" : "check failed") : last;
    }
  } else {
    x.state = ServerState::Up;
    x.reason = e.readmitted_at ? "no check configured; re-admitted after a TCP connect" : "no check configured";
  }
  uint64_t weight = e.config.weight;
  // HAProxy's agent "N%": a share of the configured weight.
  if (e.agent_weight_percent) weight = std::min<uint64_t>(256, weight * *e.agent_weight_percent / 100);
  x.weight = static_cast<uint32_t>(weight);
  return x;
}

bool HealthMonitor::apply(Entry& e, Effective x, int64_t w) {
  bool changed = false;
  if (x.state != e.state) {
    spdlog::log(x.state == ServerState::Down ? spdlog::level::warn : spdlog::level::info, "health: {}/{} {} -> {}: {}",
                e.service, e.server, to_string(e.state), to_string(x.state), x.reason);
    e.since_ms = w;
    changed = true;
  }
  if (x.weight != e.weight) changed = true;
  e.state = x.state;
  e.reason = std::move(x.reason);
  e.weight = x.weight;
  return changed;
}

void HealthMonitor::recompute() {
  bool changed = false;
  for (ServiceState& pool : services_) changed = recompute_pool(pool) || changed;
  if (changed) notify();
}

void HealthMonitor::recompute(Entry& e) {
  if (!e.pool) return;
  if (e.pool->single_writer) {
    if (recompute_pool(*e.pool)) notify();
    return;
  }
  if (apply(e, effective(e), wall())) notify();
}

bool HealthMonitor::recompute_pool(ServiceState& pool) {
  bool changed = false;
  const int64_t w = wall();
  std::vector<Effective> next;
  for (const Entry* e : pool.servers) next.push_back(effective(*e));
  std::optional<std::string> writer;
  if (pool.single_writer) {
    std::vector<WriterCandidate> candidates;
    for (size_t i = 0; i < pool.servers.size(); ++i) {
      const Entry* e = pool.servers[i];
      WriterCandidate c;
      c.name = e->server;
      c.backup = e->config.backup;
      c.usable = next[i].state == ServerState::Up && next[i].weight > 0;
      c.unusable_reason = std::string(to_string(next[i].state)) +
                          (next[i].reason.empty() ? "" : " (" + next[i].reason + ")");
      if (e->check) {
        if (e->last && e->probe_is_check) {
          c.last_ok = e->last->ok;
          c.last_reason = e->last->reason;
          c.galera = e->last->galera;
        }
        c.eligible_streak = e->writer_ok_streak;
        c.ineligible_streak = e->writer_bad_streak;
        c.rise = e->check->rise;
        c.fall = e->check->fall;
      } else {
        c.last_ok = true;  // nothing to check: its state is all there is
      }
      c.mysql = pool.mysql;
      c.pending = next[i].state == ServerState::Unknown;
      candidates.push_back(std::move(c));
    }
    WriterChoice choice = choose_writer(candidates, pool.writer);
    if (choice.writer) writer = candidates[*choice.writer].name;
    if (writer != pool.writer) {
      spdlog::log(writer ? spdlog::level::warn : spdlog::level::err, "health: {}: writer {} -> {}: {}", pool.name,
                  pool.writer.value_or("none"), writer.value_or("none"), choice.reason);
      changed = true;
    }
    pool.writer = writer;
    pool.writer_reason = choice.reason;
  }
  for (size_t i = 0; i < pool.servers.size(); ++i) {
    Entry* e = pool.servers[i];
    Effective& x = next[i];
    e->writer = writer && *writer == e->server;
    // Standbys take nothing: the data plane's single-writer rule then finds exactly this writer.
    if (pool.single_writer && !e->writer) x.weight = 0;
    changed = apply(*e, std::move(x), w) || changed;
  }
  return changed;
}

void HealthMonitor::notify() {
  if (notify_pending_ || !on_change_) return;
  notify_pending_ = true;
  boost::asio::post(io_, [this, alive = std::weak_ptr<bool>(alive_)] {
    if (alive.expired()) return;
    notify_pending_ = false;
    if (on_change_ && !stopped_) on_change_();
  });
}

std::vector<ServiceView> HealthMonitor::view() const {
  std::vector<ServiceView> out;
  for (const ServiceState& pool : services_) {
    ServiceView v;
    v.name = pool.name;
    v.single_writer = pool.single_writer;
    v.writer = pool.writer;
    v.writer_reason = pool.writer_reason;
    for (const Entry* e : pool.servers) {
      ServerView s;
      s.service = e->service;
      s.server = e->server;
      s.address = e->config.address.str();
      s.state = e->state;
      s.weight = e->weight;
      s.reason = e->reason;
      s.since_ms = e->since_ms;
      s.checked = e->check.has_value();
      s.check_state = e->check ? e->counters.state : ServerState::Unknown;
      s.successes = e->counters.successes;
      s.failures = e->counters.failures;
      if (e->last) {
        s.last_ok = e->last->ok;
        s.last_reason = e->last->reason;
        s.last_check_ms = e->last_ms;
        s.evidence = evidence_of(*e->last);
      }
      s.admin = e->admin;
      s.ejected = e->ejected;
      s.ejected_reason = e->ejected_reason;
      s.ejected_until_ms = e->ejected ? e->ejected_until_ms : 0;
      s.backoff_ms = e->backoff.count();
      s.ejections = e->ejections;
      s.writer = e->writer;
      v.servers.push_back(std::move(s));
    }
    out.push_back(std::move(v));
  }
  return out;
}

size_t HealthMonitor::probes_running() const {
  return static_cast<size_t>(
      std::count_if(entries_.begin(), entries_.end(), [](const auto& kv) { return kv.second->probe != nullptr; }));
}

}  // namespace hafront::health
