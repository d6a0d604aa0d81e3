// systemd service notifications (sd_notify). Every call is a no-op when the daemon was not
// started by systemd (NOTIFY_SOCKET unset), so the daemon runs the same in a terminal.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace hafront::daemon {

class Notifier {
 public:
  void ready();
  void reloading();  // RELOADING=1 with MONOTONIC_USEC, as Type=notify-reload expects
  void stopping();
  void status(std::string_view text);
  void watchdog();
  // The interval at which to ping the watchdog (half of WATCHDOG_USEC), if systemd asked.
  static std::optional<std::chrono::microseconds> watchdog_interval();
};

}  // namespace hafront::daemon
