#include "health/alerts.h"

#include <algorithm>
#include <ctime>

namespace hafront::health {
namespace json = boost::json;

namespace {
constexpr int64_t kMinute = 60'000;
constexpr size_t kMaxEvidence = 16;
constexpr size_t kMaxReady = 1000;   // resolved alerts and events waiting to go
constexpr size_t kMaxEventTexts = 256;
}  // namespace

const char* to_string(AlertSeverity s) {
  switch (s) {
    case AlertSeverity::Info: return "info";
    case AlertSeverity::Warning: return "warning";
    case AlertSeverity::Critical: return "critical";
  }
  return "?";
}

std::string rfc3339(int64_t unix_ms) {
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[64];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(unix_ms % 1000));
  return out;
}

json::object to_json(const Alert& a, const std::string& node, const std::string& cluster) {
  json::array affected, evidence;
  for (const auto& s : a.affected) affected.push_back(json::value(s));
  for (const auto& e : a.evidence) {
    json::object o{{"server", e.server}, {"state", e.state}, {"reason", e.reason}};
    const Evidence& v = e.evidence;
    if (v.http_status) o["http_status"] = *v.http_status;
    if (!v.body_excerpt.empty()) o["body_excerpt"] = v.body_excerpt;
    if (v.wsrep_local_state) o["wsrep_local_state"] = *v.wsrep_local_state;
    if (!v.wsrep_state_comment.empty()) o["wsrep_local_state_comment"] = v.wsrep_state_comment;
    if (!v.wsrep_cluster_status.empty()) o["wsrep_cluster_status"] = v.wsrep_cluster_status;
    if (v.wsrep_last_committed) o["wsrep_last_committed"] = *v.wsrep_last_committed;
    if (v.exit_code) o["exit_code"] = *v.exit_code;
    evidence.push_back(std::move(o));
  }
  return json::object{{"id", a.id},
                      {"severity", to_string(a.severity)},
                      {"state", a.firing ? "firing" : "resolved"},
                      {"summary", a.summary},
                      {"root_cause", a.root_cause},
                      {"affected", std::move(affected)},
                      {"evidence", std::move(evidence)},
                      {"time", rfc3339(a.time_ms)},
                      {"since", a.since_ms > 0 ? json::value(rfc3339(a.since_ms)) : json::value(nullptr)},
                      {"node", node},
                      {"cluster", cluster}};
}

Problems problems_from(std::span<const ServiceVerdict> verdicts, std::span<const ServiceView> services) {
  Problems out;
  auto evidence_of = [&](const std::string& service) {
    std::vector<AlertEvidence> ev;
    for (const auto& s : services) {
      if (s.name != service) continue;
      for (const auto& srv : s.servers) {
        if (srv.state == ServerState::Up || ev.size() >= kMaxEvidence) continue;
        ev.push_back({srv.server, to_string(srv.state), srv.reason, srv.evidence});
      }
    }
    return ev;
  };
  for (const auto& v : verdicts) {
    if (v.state == ServiceState::Down) {
      bool own_root = v.roots.size() == 1 && v.roots.front() == v.name;
      if (!own_root) {
        std::string roots;
        for (const auto& r : v.roots) roots += (roots.empty() ? "" : ", ") + r;
        out.folded[v.name] = roots;
        continue;
      }
      Problem p;
      p.id = v.name;
      p.severity = AlertSeverity::Critical;
      p.summary = v.name + " down";
      p.root_cause = v.root_cause;
      p.affected = v.affected;
      p.evidence = evidence_of(v.name);
      out.problems.push_back(std::move(p));
    } else if (v.state == ServiceState::Degraded) {
      Problem p;
      p.id = v.name;
      p.severity = AlertSeverity::Warning;
      p.summary = v.name + " degraded";
      p.root_cause = v.name + ": degraded — " + v.reason;
      p.evidence = evidence_of(v.name);
      out.problems.push_back(std::move(p));
    }
  }
  return out;
}

void AlertEngine::update(const Problems& now_problems, int64_t now_ms) {
  std::map<std::string, const Problem*> present;
  for (const auto& p : now_problems.problems) present[p.id] = &p;
  // Gone (or folded): resolved at once if it was sent, forgotten otherwise.
  for (auto it = tracked_.begin(); it != tracked_.end();) {
    if (present.count(it->first)) {
      ++it;
      continue;
    }
    const Tracked& t = it->second;
    if (t.sent) {
      Alert a;
      a.id = t.problem.id;
      a.severity = *t.sent;
      a.firing = false;
      a.since_ms = t.since_ms;
      a.affected = t.problem.affected;
      auto folded = now_problems.folded.find(t.problem.id);
      a.summary = folded != now_problems.folded.end()
                      ? t.problem.id + " resolved: now part of the alert for " + folded->second
                      : t.problem.id + " resolved";
      a.root_cause = t.problem.root_cause;
      if (ready_.size() < kMaxReady) ready_.push_back(std::move(a));
    }
    it = tracked_.erase(it);
  }
  for (const auto& [id, p] : present) {
    auto [it, fresh] = tracked_.try_emplace(id);
    Tracked& t = it->second;
    if (fresh) {
      t.since_ms = now_ms;
      t.pending_since_ms = now_ms;
    } else if (p->severity != t.problem.severity) {
      t.pending_since_ms = now_ms;  // a new severity waits like a new problem
    }
    t.problem = *p;
  }
}

void AlertEngine::event(const std::string& message, AlertSeverity severity, int64_t now_ms) {
  if (auto it = events_.find(message); it != events_.end() && now_ms - it->second < kMinute) return;
  if (events_.size() >= kMaxEventTexts) {
    std::erase_if(events_, [&](const auto& kv) { return now_ms - kv.second >= kMinute; });
    if (events_.size() >= kMaxEventTexts) events_.clear();
  }
  events_[message] = now_ms;
  Alert a;
  a.id = "event";
  a.severity = severity;
  a.summary = message;
  a.since_ms = now_ms;
  if (ready_.size() < kMaxReady) ready_.push_back(std::move(a));
}

std::vector<Alert> AlertEngine::take_due(int64_t now_ms) {
  std::vector<Alert> out;
  while (!ready_.empty()) {
    out.push_back(std::move(ready_.front()));
    ready_.pop_front();
  }
  for (auto& [id, t] : tracked_) {
    if (t.sent == t.problem.severity) continue;  // sent already: no repeat
    if (now_ms - t.pending_since_ms < group_wait_.count()) continue;
    Alert a;
    a.id = id;
    a.severity = t.problem.severity;
    a.summary = t.problem.summary;
    a.root_cause = t.problem.root_cause;
    a.affected = t.problem.affected;
    a.evidence = t.problem.evidence;
    a.since_ms = t.since_ms;
    t.sent = t.problem.severity;
    out.push_back(std::move(a));
  }
  for (auto& a : out) a.time_ms = now_ms;
  return out;
}

std::optional<int64_t> AlertEngine::next_due() const {
  std::optional<int64_t> next;
  if (!ready_.empty()) return int64_t{0};
  for (const auto& [id, t] : tracked_) {
    if (t.sent == t.problem.severity) continue;
    int64_t at = t.pending_since_ms + group_wait_.count();
    if (!next || at < *next) next = at;
  }
  return next;
}

std::vector<Alert> AlertEngine::active() const {
  std::vector<Alert> out;
  for (const auto& [id, t] : tracked_) {
    Alert a;
    a.id = id;
    a.severity = t.problem.severity;
    a.summary = t.problem.summary + (t.sent == t.problem.severity ? "" : " (waiting to be sent)");
    a.root_cause = t.problem.root_cause;
    a.affected = t.problem.affected;
    a.evidence = t.problem.evidence;
    a.since_ms = t.since_ms;
    out.push_back(std::move(a));
  }
  return out;
}

void RateLimiter::expire(int64_t now_ms) {
  while (!sent_.empty() && now_ms - sent_.front() >= kMinute) sent_.pop_front();
}

bool RateLimiter::admit(int64_t now_ms) {
  expire(now_ms);
  if (sent_.size() < per_minute_) {
    sent_.push_back(now_ms);
    return true;
  }
  ++suppressed_;
  return false;
}

std::optional<uint64_t> RateLimiter::take_summary(int64_t now_ms) {
  if (suppressed_ == 0) return std::nullopt;
  expire(now_ms);
  if (sent_.size() >= per_minute_) return std::nullopt;
  sent_.push_back(now_ms);
  uint64_t n = suppressed_;
  suppressed_ = 0;
  return n;
}

std::optional<int64_t> RateLimiter::summary_due() const {
  if (suppressed_ == 0) return std::nullopt;
  if (sent_.size() < per_minute_) return int64_t{0};
  return sent_.front() + kMinute;
}

}  // namespace hafront::health
