// The health monitor: schedules the active checks of every server, applies hysteresis,
// ejects servers on what the proxy sees, follows operators and agent checks, chooses the
// writer of single-writer services, and says what each server's state and weight are.
// It runs on the control thread's Asio loop; the daemon turns its view() into the data
// plane's server states, service root causes, alerts and VIP health gates.
//
// Scheduling (doc/health.md):
//  - one schedule per (service, server) whose service has a check; the first check runs
//    within the first fast_interval after the server appears, spread out per server;
//  - after each check the next one is due `interval` later, or `fast_interval` while the
//    server is between states (a run toward rise or fall has started), each time moved by
//    up to ±jitter_percent at random from a generator seeded per server, so servers that
//    share a check spread out instead of probing in step;
//  - a check never overlaps the previous one of the same server: the next is scheduled
//    from the completion of the last (the probe ends within the check's timeout).
//
// A server's state in effect, strongest first: maint (operator, or an agent check), drain
// (operator, or agent), down because the proxy ejected it, down because an agent said so,
// then what the checks say (unknown before the first one). A server of a service without a
// check is up unless ejected.
//
// Passive ejection: `passive.connect_failures` failed connects in a row (a successful
// connect in between, seen through the server's connect counter, starts over),
// `passive.resets` resets in a row, or `passive.http_5xx` 5xx answers in a row (no other
// answer between) within `passive.window` eject the server at once. It comes back only once its back-off
// (passive.backoff, doubling with every ejection that follows the last re-admission by
// less than passive.max_backoff, at most max_backoff) has passed and an active check then
// passes: the service's check, or a TCP connect when it has none. A failing re-admission
// check doubles the back-off.
//
// Reload (configure()): a server whose service, name, address and check are unchanged
// keeps its state, counters, ejection and schedule; an operator's drain or maint stays
// with the (service, server) name. Everything else starts over as unknown.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <queue>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "config/config_types.h"
#include "health/health_types.h"
#include "health/hysteresis.h"
#include "health/probe.h"

namespace hafront::health {

using SteadyTime = std::chrono::steady_clock::time_point;

class HealthMonitor {
 public:
  using ProbeFactory = std::function<std::unique_ptr<Probe>(boost::asio::io_context&, const config::Check&,
                                                            const ProbeTarget&, ProbeDone)>;
  struct Options {
    ProbeFactory probe;                    // the daemon gives start_probe; tests a fake
    std::function<SteadyTime()> now;       // empty: steady_clock::now()
    std::function<int64_t()> wall_ms;      // unix ms for status; empty: system_clock
    uint64_t seed = 0;                     // mixed into every server's jitter seed
    // Arm an Asio timer for the next due check. Tests that drive time turn it off and call
    // poll() themselves.
    bool timers = true;
  };

  HealthMonitor(boost::asio::io_context& io, Options options);
  ~HealthMonitor();
  HealthMonitor(const HealthMonitor&) = delete;
  HealthMonitor& operator=(const HealthMonitor&) = delete;

  // At start and on every reload (see the file comment for what is kept).
  void configure(std::shared_ptr<const config::Config> config);
  // Cancels every check; nothing is called afterwards.
  void stop();

  // The proxy saw `kind` on a server (`detail`: "connect refused", ...). `successes` is the
  // server's count so far of what would have ended the run: successful connects for connect
  // failures and resets, answers other than 5xx for Http5xx. When it moved since the last
  // event of that kind, the events before were not in a row.
  void on_passive(const std::string& service, const std::string& server, PassiveKind kind,
                  const std::string& detail, uint64_t successes);

  // An operator's drain / maint / ready (AdminState::None). Returns an error text when the
  // server does not exist.
  std::string set_admin(const std::string& service, const std::string& server, AdminState state);

  // Starts the checks that are due and ends back-offs; returns when something is next due.
  // With timers on this runs by itself.
  std::optional<SteadyTime> poll();

  // Called after a server's state, weight or a service's writer changed: once per loop turn
  // however many changed (posted on the io_context, never from inside a call).
  void set_on_change(std::function<void()> on_change) { on_change_ = std::move(on_change); }

  std::vector<ServiceView> view() const;

  size_t probes_running() const;
  uint64_t probes_started() const { return probes_started_; }

 private:
  struct Entry;
  struct ServiceState;

  void start_probe(Entry& e, SteadyTime now);
  void on_observation(Entry& e, uint64_t generation, Observation obs);
  void eject(Entry& e, const std::string& why, SteadyTime now);
  void schedule_next(Entry& e, SteadyTime now);
  // Sets when `e` is next due (nullopt: not scheduled) and queues it.
  void set_next(Entry& e, std::optional<SteadyTime> at);
  void rebuild_schedule();
  // Recomputes every server's state in effect and the writers; notifies on change.
  void recompute();
  // The same for one server: its own state, or its whole pool when the pool has a writer to
  // choose. A check result costs this, not a pass over every server.
  void recompute(Entry& e);
  bool recompute_pool(ServiceState& pool);
  struct Effective;
  // The state in effect of one server, before the writer choice.
  static Effective effective(const Entry& e);
  // Takes `x` as the server's state in effect; true if its state or weight changed.
  static bool apply(Entry& e, Effective x, int64_t wall_ms);
  void notify();
  void arm();
  int64_t wall() const;
  SteadyTime now() const;
  SteadyTime jittered(Entry& e, SteadyTime from, std::chrono::milliseconds base);

  boost::asio::io_context& io_;
  Options options_;
  boost::asio::steady_timer timer_;
  std::optional<SteadyTime> armed_at_;
  std::shared_ptr<const config::Config> config_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Entry>> entries_;
  std::vector<ServiceState> services_;
  // When each entry is next due: a min-heap of (time, entry, the entry's schedule
  // generation); an item whose generation is not the entry's current one is stale and
  // dropped when it reaches the top. Rebuilt whenever entries are replaced (configure).
  struct Due {
    SteadyTime at;
    Entry* entry;
    uint64_t generation;
    bool operator>(const Due& o) const { return at > o.at; }
  };
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> schedule_;
  std::function<void()> on_change_;
  bool notify_pending_ = false;
  bool stopped_ = false;
  uint64_t probes_started_ = 0;
  // Lives as long as the monitor: posted handlers check it before touching `this`.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace hafront::health
