#include "proxy/access_log.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/uio.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <vector>

namespace hafront::proxy {
namespace {

constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr size_t kQueueLines = 8192;

}  // namespace

namespace {

// "127.0.0.1:40312 [07/Mar/2025:10:21:07.311]" into `out` (which must hold 96 bytes).
int format_client_and_date(const config::Endpoint& c, int64_t unix_ms, char* out, size_t size) noexcept {
  using namespace std::chrono;
  const sys_time<milliseconds> at{milliseconds{unix_ms}};
  const auto day = floor<days>(at);
  const year_month_day ymd{day};
  const hh_mm_ss<milliseconds> time{at - day};
  char address[INET6_ADDRSTRLEN] = "?";
  inet_ntop(c.address.is_v6() ? AF_INET6 : AF_INET, c.address.bytes.data(), address, sizeof address);
  return std::snprintf(out, size, c.address.is_v6() ? "[%s]:%u [%02u/%s/%04d:%02d:%02d:%02d.%03d]"
                                                    : "%s:%u [%02u/%s/%04d:%02d:%02d:%02d.%03d]",
                       address, unsigned{c.port}, unsigned{ymd.day()}, kMonths[(unsigned{ymd.month()} + 11) % 12],
                       int{ymd.year()}, static_cast<int>(time.hours().count()),
                       static_cast<int>(time.minutes().count()), static_cast<int>(time.seconds().count()),
                       static_cast<int>(time.subseconds().count()));
}

}  // namespace

size_t format_http_access_line(const HttpAccessLogEntry& e, std::span<char, kAccessLineMax> out) noexcept {
  char prefix[96];
  if (format_client_and_date(e.client, e.started_unix_ms, prefix, sizeof prefix) < 0) return 0;
  std::string_view backend = e.backend.empty() ? e.frontend : e.backend;
  std::string_view server = e.server.empty() ? std::string_view("<NOSRV>") : e.server;
  char status[8];
  std::snprintf(status, sizeof status, "%d", e.status == 0 ? -1 : int{e.status});
  int n = std::snprintf(out.data(), out.size(), "%s %.*s %.*s/%.*s %lld/%lld/%lld/%lld/%lld %s %llu - - %c%c-- %u \"",
                        prefix, static_cast<int>(e.frontend.size()), e.frontend.data(),
                        static_cast<int>(backend.size()), backend.data(), static_cast<int>(server.size()),
                        server.data(), static_cast<long long>(e.request_ms), static_cast<long long>(e.queue_ms),
                        static_cast<long long>(e.connect_ms), static_cast<long long>(e.response_ms),
                        static_cast<long long>(e.active_ms), status, static_cast<unsigned long long>(e.bytes_to_client),
                        e.termination[0], e.termination[1], e.retries);
  if (n < 0) return 0;
  size_t used = std::min(static_cast<size_t>(n), out.size() - 3);
  // The request line, cut to what fits before the closing quote and the newline.
  size_t room = out.size() - 2 - used;
  size_t take = std::min(e.request_line.size(), room);
  for (size_t i = 0; i < take; ++i) {
    char ch = e.request_line[i];
    // The line is one line: control characters and quotes are never written as they are.
    out[used + i] = (ch < 0x20 || ch == 0x7f || ch == '"') ? '?' : ch;
  }
  used += take;
  out[used++] = '"';
  out[used++] = '\n';
  return used;
}

size_t format_access_line(const AccessLogEntry& e, std::span<char, kAccessLineMax> out) noexcept {
  using namespace std::chrono;
  const sys_time<milliseconds> at{milliseconds{e.accepted_unix_ms}};
  const auto day = floor<days>(at);
  const year_month_day ymd{day};
  const hh_mm_ss<milliseconds> time{at - day};
  char address[INET6_ADDRSTRLEN] = "?";
  inet_ntop(e.client.address.is_v6() ? AF_INET6 : AF_INET, e.client.address.bytes.data(), address, sizeof address);
  char client[INET6_ADDRSTRLEN + 10];
  if (e.client.address.is_v6()) {
    std::snprintf(client, sizeof client, "[%s]:%u", address, unsigned{e.client.port});
  } else {
    std::snprintf(client, sizeof client, "%s:%u", address, unsigned{e.client.port});
  }
  std::string_view server = e.server.empty() ? std::string_view("<NOSRV>") : e.server;
  int n = std::snprintf(out.data(), out.size(),
                        "%s [%02u/%s/%04d:%02d:%02d:%02d.%03d] %.*s %.*s/%.*s %lld/%lld/%lld %llu %llu %c%c %u\n",
                        client, unsigned{ymd.day()}, kMonths[(unsigned{ymd.month()} + 11) % 12], int{ymd.year()},
                        static_cast<int>(time.hours().count()), static_cast<int>(time.minutes().count()),
                        static_cast<int>(time.seconds().count()), static_cast<int>(time.subseconds().count()),
                        static_cast<int>(e.service.size()), e.service.data(), static_cast<int>(e.service.size()),
                        e.service.data(), static_cast<int>(server.size()), server.data(),
                        static_cast<long long>(e.queue_ms), static_cast<long long>(e.connect_ms),
                        static_cast<long long>(e.total_ms), static_cast<unsigned long long>(e.bytes_to_client),
                        static_cast<unsigned long long>(e.bytes_from_client), e.termination[0], e.termination[1],
                        e.retries);
  if (n < 0) return 0;
  if (static_cast<size_t>(n) >= out.size()) {
    out[out.size() - 1] = '\n';
    return out.size();
  }
  return static_cast<size_t>(n);
}

AccessLog::AccessLog() : lines_(kQueueLines) { writer_ = std::thread([this] { run(); }); }

AccessLog::~AccessLog() { stop(); }

std::optional<std::string> AccessLog::open(const std::string& target) {
  int fd = kOff;
  if (target == "stderr") {
    fd = STDERR_FILENO;
  } else if (!target.empty()) {
    fd = ::open(target.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) return "cannot open the access log " + target + ": " + std::strerror(errno);
  }
  int old = next_fd_.exchange(fd, std::memory_order_acq_rel);
  // A target the writer never picked up is ours to close.
  if (old >= 0 && old != STDERR_FILENO) ::close(old);
  target_ = target;
  enabled_.store(fd != kOff, std::memory_order_relaxed);
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(lines_.fd(), &one, sizeof one);  // the writer takes it now
  return std::nullopt;
}

void AccessLog::stop() {
  if (!writer_.joinable()) return;
  enabled_.store(false, std::memory_order_relaxed);
  stopping_.store(true, std::memory_order_release);
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(lines_.fd(), &one, sizeof one);
  writer_.join();
  int fd = next_fd_.exchange(kNoChange);
  if (fd >= 0 && fd != STDERR_FILENO) ::close(fd);
}

void AccessLog::post(std::span<const char> text) noexcept {
  Line line;
  line.length = static_cast<uint16_t>(std::min(text.size(), line.text.size()));
  std::memcpy(line.text.data(), text.data(), line.length);
  lines_.post(line);
}

void AccessLog::run() {
  int fd = kOff;
  std::vector<iovec> batch;
  std::vector<Line> held;
  batch.reserve(64);
  held.reserve(64);
  auto flush = [&] {
    if (fd >= 0 && !batch.empty()) {
      // A short or failed write loses lines; the log must never stop the writer.
      [[maybe_unused]] ssize_t n = ::writev(fd, batch.data(), static_cast<int>(batch.size()));
    }
    batch.clear();
    held.clear();
  };
  for (;;) {
    pollfd p{lines_.fd(), POLLIN, 0};
    ::poll(&p, 1, -1);
    // A new target first: lines queued around a reopen go to the new file, never nowhere.
    int next = next_fd_.exchange(kNoChange, std::memory_order_acq_rel);
    if (next != kNoChange) {
      if (fd >= 0 && fd != STDERR_FILENO) ::close(fd);
      fd = next;
    }
    bool stopping = stopping_.load(std::memory_order_acquire);
    lines_.drain([&](const Line& line) {
      held.push_back(line);
      if (held.size() == held.capacity()) {
        for (auto& l : held) batch.push_back({l.text.data(), l.length});
        flush();
      }
    });
    for (auto& l : held) batch.push_back({l.text.data(), l.length});
    flush();
    if (stopping) break;
  }
  if (fd >= 0 && fd != STDERR_FILENO) ::close(fd);
}

}  // namespace hafront::proxy
