// The access log: one line per proxied connection in tcp mode, in HAProxy's TCP log order,
// and one per request in http mode, in HAProxy's HTTP log order (doc/configuration.md,
// `proxy.access_log`).
//
// Workers format the line themselves (format_access_line(), pure and without locks: the
// date comes from calendar arithmetic, not from localtime) and post it to a bounded queue;
// a writer thread of its own appends lines to the file. When the writer falls behind,
// lines are dropped and counted rather than ever making a worker wait.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>

#include "config/config_types.h"
#include "proxy/event_queue.h"

namespace hafront::proxy {

struct AccessLogEntry {
  config::Endpoint client;
  int64_t accepted_unix_ms = 0;  // wall clock at accept
  std::string_view service;
  std::string_view server;  // empty: no server was picked
  int64_t queue_ms = -1;    // Tw; -1: never queued
  int64_t connect_ms = -1;  // Tc; -1: never connected
  int64_t total_ms = 0;     // Tt
  uint64_t bytes_to_client = 0;
  uint64_t bytes_from_client = 0;
  char termination[2] = {'-', '-'};
  uint32_t retries = 0;
};

// One request in http mode.
struct HttpAccessLogEntry {
  config::Endpoint client;
  int64_t started_unix_ms = 0;  // wall clock of the request's first byte
  std::string_view frontend;    // the listening service
  std::string_view backend;     // the service whose servers answered (empty: none chosen)
  std::string_view server;      // empty: no server was picked
  int64_t request_ms = -1;      // TR: first byte to complete head; -1: never complete
  int64_t queue_ms = -1;        // Tw
  int64_t connect_ms = -1;      // Tc (0 on a reused connection)
  int64_t response_ms = -1;     // Tr: request sent to first response byte
  int64_t active_ms = 0;        // Ta: first byte to the end of the response
  uint16_t status = 0;          // 0: no response (logged as -1)
  uint64_t bytes_to_client = 0;
  char termination[2] = {'-', '-'};
  uint32_t retries = 0;
  std::string_view request_line;  // "GET /path HTTP/1.1"
};

inline constexpr size_t kAccessLineMax = 480;

// Writes the line (newline included) into `out`; returns its length. A line that does not
// fit is cut and still ends with a newline.
size_t format_access_line(const AccessLogEntry& entry, std::span<char, kAccessLineMax> out) noexcept;
// The same for http mode; a request line that does not fit is cut inside its quotes.
size_t format_http_access_line(const HttpAccessLogEntry& entry, std::span<char, kAccessLineMax> out) noexcept;

class AccessLog {
 public:
  AccessLog();
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // The control thread, at start and on every reload: "" (off), "stderr", or a file path
  // (opened for appending, created 0640). The previous file is closed once the writer has
  // moved on. Returns an error text when the file cannot be opened; logging then stays as
  // it was.
  std::optional<std::string> open(const std::string& target);
  // Stops the writer thread after it has written what is queued.
  void stop();

  // Workers: whether to format lines at all.
  bool enabled() const noexcept { return enabled_.load(std::memory_order_relaxed); }
  // Workers: queue one formatted line. Never blocks.
  void post(std::span<const char> line) noexcept;
  uint64_t dropped() const noexcept { return lines_.dropped(); }

 private:
  struct Line {
    uint16_t length = 0;
    std::array<char, kAccessLineMax> text{};
  };
  void run();

  EventChannel<Line> lines_;
  std::atomic<bool> enabled_{false};
  std::atomic<int> next_fd_{kNoChange};  // handed to the writer: a new target
  std::atomic<bool> stopping_{false};
  std::string target_;
  std::thread writer_;
  static constexpr int kNoChange = -2;
  static constexpr int kOff = -1;
};

}  // namespace hafront::proxy
