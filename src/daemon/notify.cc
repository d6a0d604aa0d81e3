#include "daemon/notify.h"

#include <systemd/sd-daemon.h>

#include <ctime>
#include <string>

namespace hafront::daemon {

void Notifier::ready() { sd_notify(0, "READY=1"); }

void Notifier::reloading() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t usec = static_cast<uint64_t>(ts.tv_sec) * 1'000'000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
  std::string msg = "RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec);
  sd_notify(0, msg.c_str());
}

void Notifier::stopping() { sd_notify(0, "STOPPING=1"); }

void Notifier::status(std::string_view text) {
  std::string msg = "STATUS=" + std::string(text);
  sd_notify(0, msg.c_str());
}

void Notifier::watchdog() { sd_notify(0, "WATCHDOG=1"); }

std::optional<std::chrono::microseconds> Notifier::watchdog_interval() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec / 2);
}

}  // namespace hafront::daemon
