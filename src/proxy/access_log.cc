#include "proxy/access_log.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/uio.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

namespace hafront::proxy {
namespace {

constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr size_t kQueueLines = 8192;

}  // namespace

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
