// Health alerts: one alert per problem, not one per symptom. Pure (time is an argument).
//
// From the services' verdicts (root_cause.h) come the problems: a service that is down and
// is its own root is one critical problem that lists the services down because of it
// ("galera down", affected: keystone, nova); a degraded service is one warning. A service
// that is down because of another is folded into that one's alert and gets none of its own,
// and single servers never get one (they are the evidence).
//
// The AlertEngine turns the problems of each moment into alerts to send:
//  - a new problem (or one whose severity changed) waits `group_wait` before it is sent, so
//    that what follows from it within a check or two is folded in first; a problem that
//    goes away, or is folded into another, before then is never sent;
//  - de-duplication: a problem is sent once per (id, severity) while it lasts;
//  - when a sent problem goes away a resolved alert follows at once (also when it was
//    folded into another problem: the resolved alert says into which);
//  - events (fencing, cluster, VIP alerts of the daemon) are sent as they come, the same
//    text at most once a minute.
// Rate limiting is per sink (RateLimiter): at most N alerts in any minute; the rest are
// counted and summed up in one "N more alerts" alert when the minute allows again.
#pragma once

#include <boost/json.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "health/health_types.h"
#include "health/root_cause.h"

namespace hafront::health {

enum class AlertSeverity : uint8_t { Info, Warning, Critical };
const char* to_string(AlertSeverity);

// One server's part in a problem.
struct AlertEvidence {
  std::string server;
  std::string state;
  std::string reason;
  Evidence evidence;
};

struct Alert {
  std::string id;  // a service name; "event" for the daemon's one-off alerts; "rate-limit"
  AlertSeverity severity = AlertSeverity::Warning;
  bool firing = true;  // false: resolved
  std::string summary;     // "galera down", "galera resolved", the event's text
  std::string root_cause;  // "galera: down — no usable server: db-1 down (connect refused)"
  std::vector<std::string> affected;  // services down because of it
  std::vector<AlertEvidence> evidence;
  int64_t time_ms = 0;       // unix ms when it was sent
  int64_t since_ms = 0;      // unix ms when the problem began
};

// The wire form for sinks and status; `node` and `cluster` say where it comes from.
boost::json::object to_json(const Alert& alert, const std::string& node, const std::string& cluster);
// "2026-01-31T12:00:00.000Z"
std::string rfc3339(int64_t unix_ms);

// A problem of the moment, before the engine decides what to send.
struct Problem {
  std::string id;
  AlertSeverity severity = AlertSeverity::Warning;
  std::string summary;
  std::string root_cause;
  std::vector<std::string> affected;
  std::vector<AlertEvidence> evidence;
};

struct Problems {
  std::vector<Problem> problems;
  std::map<std::string, std::string> folded;  // service -> the root(s) it is folded into
};

// The problems of the verdicts; `services` gives each server's evidence (at most 16 per
// problem, the ones that are not up).
Problems problems_from(std::span<const ServiceVerdict> verdicts, std::span<const ServiceView> services);

class AlertEngine {
 public:
  explicit AlertEngine(std::chrono::milliseconds group_wait = std::chrono::seconds(3)) : group_wait_(group_wait) {}
  void set_group_wait(std::chrono::milliseconds w) { group_wait_ = w; }

  // The problems now (every call gives the whole set).
  void update(const Problems& now_problems, int64_t now_ms);
  // A one-off alert.
  void event(const std::string& message, AlertSeverity severity, int64_t now_ms);
  // What is due now, in order: resolved ones and events at once, problems after group_wait.
  std::vector<Alert> take_due(int64_t now_ms);
  // When take_due() has something next (unix ms), if anything waits.
  std::optional<int64_t> next_due() const;
  // The problems that are firing (sent or waiting), for status.
  std::vector<Alert> active() const;

 private:
  struct Tracked {
    Problem problem;
    int64_t since_ms = 0;                  // when it began
    int64_t pending_since_ms = 0;          // when its current severity began
    std::optional<AlertSeverity> sent;     // the severity last sent as firing
  };
  std::chrono::milliseconds group_wait_;
  std::map<std::string, Tracked> tracked_;
  std::deque<Alert> ready_;                 // resolved alerts and events, to go at once
  std::map<std::string, int64_t> events_;   // event text -> last sent (unix ms)
};

// At most `per_minute` alerts in any 60 s, per sink.
class RateLimiter {
 public:
  explicit RateLimiter(uint32_t per_minute) : per_minute_(per_minute) {}
  void set_limit(uint32_t per_minute) { per_minute_ = per_minute; }
  // Whether one more may go now; a refused one is counted for the summary.
  bool admit(int64_t now_ms);
  // Once a slot is free again after refusals: the number refused (the summary takes the
  // slot). nullopt when there is nothing to sum up or no slot yet.
  std::optional<uint64_t> take_summary(int64_t now_ms);
  std::optional<int64_t> summary_due() const;
  uint64_t suppressed() const { return suppressed_; }

 private:
  void expire(int64_t now_ms);
  uint32_t per_minute_;
  std::deque<int64_t> sent_;
  uint64_t suppressed_ = 0;
};

}  // namespace hafront::health
