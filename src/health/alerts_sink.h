// Where alerts go (config `alerts:`), and the manager that feeds them from the AlertEngine
// on the control loop.
//
//  - webhook: an HTTP/1.1 POST of the alert's JSON (Boost.Beast on the Asio loop), the
//    whole exchange bounded by `timeout`; a 2xx answer is a success;
//  - exec: the command (argv, no shell) with the alert's JSON on its stdin, spawned with
//    posix_spawn in a session of its own, its output discarded, the whole group killed at
//    `timeout`; exit 0 is a success.
// Neither ever blocks the loop. Each sink runs at most 4 sends at once and queues at most
// 100 more (the oldest are dropped and counted); a failure is logged and counted, never
// retried (the next alert will say what is still wrong).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config_types.h"
#include "health/alerts.h"

namespace hafront::health {

struct SinkStatus {
  std::string name;  // "webhook http://...", "exec /usr/local/bin/page"
  uint64_t sent = 0;
  uint64_t failed = 0;
  uint64_t dropped = 0;      // queue full
  uint64_t rate_limited = 0; // refused by the per-minute limit (summed up later)
  std::string last_error;
};

class AlertSink {
 public:
  virtual ~AlertSink() = default;
  // Sends one alert (its JSON text); never blocks, never throws.
  virtual void send(const std::string& body) = 0;
  virtual SinkStatus status() const = 0;
  // Abandons what runs (children killed) and sends nothing more.
  virtual void stop() = 0;
};

std::unique_ptr<AlertSink> make_webhook_sink(boost::asio::io_context& io, const config::WebhookSink& config);
std::unique_ptr<AlertSink> make_exec_sink(boost::asio::io_context& io, const config::ExecSink& config);

class AlertManager {
 public:
  struct Options {
    std::function<int64_t()> now_ms;  // unix ms; empty: the system clock
    bool timers = true;               // off: the caller calls pump()
  };

  AlertManager(boost::asio::io_context& io, std::string node, std::string cluster, Options options);
  AlertManager(boost::asio::io_context& io, std::string node, std::string cluster);
  ~AlertManager();

  // Sinks and limits from the config (at start and reload; changed sinks are replaced,
  // what they were sending is abandoned).
  void configure(const config::AlertOptions& options);
  // Tests: a sink of their own, with the configured limits.
  void add_sink(std::unique_ptr<AlertSink> sink);

  // The problems now (after every health change).
  void update(const Problems& problems);
  // A one-off alert from another part (fencing, cluster, VIPs).
  void event(const std::string& message, AlertSeverity severity = AlertSeverity::Warning);
  // Called for every alert as it is sent (the daemon's log and recent-alerts list).
  void set_on_alert(std::function<void(const Alert&)> f) { on_alert_ = std::move(f); }

  // Sends what is due; returns when to call again (unix ms). With timers on it runs itself.
  std::optional<int64_t> pump();
  std::vector<Alert> active() const { return engine_.active(); }
  std::vector<SinkStatus> sinks() const;
  void stop();

 private:
  struct Sink {
    std::unique_ptr<AlertSink> sink;
    RateLimiter limiter{20};
    uint64_t rate_limited = 0;
  };
  void deliver(Sink& s, const Alert& a, int64_t now);
  void arm();

  boost::asio::io_context& io_;
  std::string node_;
  std::string cluster_;
  Options options_;
  boost::asio::steady_timer timer_;
  AlertEngine engine_;
  config::AlertOptions config_;
  std::vector<Sink> sinks_;
  std::function<void(const Alert&)> on_alert_;
  bool stopped_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace hafront::health
