// Periodic `monitor` of every fence device. A device that does not answer means the nodes
// it fences are no longer protected: that is an alert now, not a surprise during the next
// failure. One device at a time (agents are heavy Python processes), every
// cluster.fencing.monitor_interval.
#pragma once

#include <boost/asio.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config_types.h"
#include "fence/agent_runner.h"

namespace hafront::fence {

struct DeviceHealth {
  std::string name;
  std::string agent;
  std::string state = "unknown";  // unknown (not checked yet) | ok | failed
  std::string reason;             // the agent's words when failed
  int64_t checked_ms = 0;         // Unix time of the last check
  int64_t elapsed_ms = 0;         // how long the last check took
  std::vector<std::string> protects;  // nodes whose fencing topology uses it
};

class DeviceMonitor {
 public:
  using Alert = std::function<void(const std::string&)>;
  DeviceMonitor(boost::asio::io_context& io, Runner& runner, Alert alert);
  ~DeviceMonitor();

  // Starts (or restarts, after a reload) the checks with this config's devices.
  void configure(std::shared_ptr<const config::Config> config);
  void stop();
  std::vector<DeviceHealth> snapshot() const;

 private:
  void schedule(std::chrono::milliseconds after);
  void pass();
  void check(size_t index);

  boost::asio::io_context& io_;
  Runner& runner_;
  Alert alert_;
  std::shared_ptr<const config::Config> config_;
  boost::asio::steady_timer timer_;
  std::shared_ptr<Runner::Handle> current_;
  std::map<std::string, DeviceHealth> health_;
  std::vector<std::string> order_;
  uint64_t generation_ = 0;  // a reload abandons the pass in progress
};

}  // namespace hafront::fence
