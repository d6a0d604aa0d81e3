// The fence executor: carries out "fence node X" through X's fencing topology.
//
//  - Levels are tried in order; every device of a level runs `off` (in parallel: the two
//    outlets feeding a dual power supply must both go off) and must succeed.
//  - A level that reported success is confirmed with `status` on each device whose agent
//    has that action: every device must answer "off". Anything else fails the level.
//  - With cluster.fencing.action: reboot, the outcome is reported at the confirmed off (the
//    proof), then the devices of that level are switched on again (all of them: both
//    outlets of a dual supply), so the node reboots; a device that stays off is an alert.
//  - A failed level escalates to the next; after the last, the whole topology is tried
//    again after a back-off (1 s, 2 s, 4 s, then every 8 s), until the request's deadline
//    (cluster.fencing.timeout). Each agent run gets min(device timeout, time left).
//  - A request may start after a delay (static, random and priority delays against fence
//    races in two-node clusters; computed by the caller) and can be cancelled at any time
//    (the target came back, someone else proved it down, this node lost quorum): its agent
//    runs are killed and no outcome is reported.
//
// It decides nothing about the cluster; the cluster manager says whom to fence and
// multicasts the outcome.
#pragma once

#include <boost/asio.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config_types.h"
#include "fence/agent_runner.h"

namespace hafront::fence {

// One agent run made for a fence request.
struct DeviceRun {
  int round = 1;
  int level = 1;  // 1-based, as operators count them
  std::string device;
  std::optional<std::string> plug;
  std::string action;  // off or status
  AgentResult result;

  std::string label() const { return plug ? device + ":" + *plug : device; }
};

struct FenceOutcome {
  std::string node;
  bool success = false;
  int level = 0;                     // the level that fenced it (success)
  std::vector<std::string> devices;  // its devices, "pdu-a:3" for a plug
  std::string reason;                // failure: why, level by level
  int rounds = 0;
  std::vector<DeviceRun> runs;
  std::chrono::system_clock::time_point requested{}, started{}, finished{};
  std::chrono::milliseconds delay{0};
};

class Fencer {
 public:
  using Done = std::function<void(const FenceOutcome&)>;
  // Whether an agent can confirm with `status` (from its metadata); unknown agents are
  // assumed to (nearly every fence agent has `status`).
  using StatusSupport = std::function<bool(const std::string& agent)>;

  Fencer(boost::asio::io_context& io, Runner& runner);
  ~Fencer();

  void set_config(std::shared_ptr<const config::Config> config) { config_ = std::move(config); }
  void set_status_support(StatusSupport f) { supports_status_ = std::move(f); }
  // Problems after the outcome was reported (action reboot: a device did not switch on).
  void set_alert(std::function<void(const std::string&)> f) { alert_ = std::move(f); }

  // Starts fencing `node` (a configured node name) after `delay`. One request per node at
  // a time: false if one is already running (it will report).
  bool fence(const std::string& node, std::chrono::milliseconds delay, Done done);
  void cancel(const std::string& node);
  void cancel_all();
  bool busy(const std::string& node) const { return requests_.count(node) > 0; }
  std::vector<std::string> in_progress() const;

 private:
  struct Request;
  void round(const std::shared_ptr<Request>& r);
  // Runs `action` on the devices `which` of level `index`, all at once, each for at most
  // min(its device timeout, cap); `done` gets every run once all are in (not if cancelled).
  void run_step(const std::shared_ptr<Request>& r, size_t index, const std::vector<size_t>& which,
                const std::string& action, std::chrono::milliseconds cap,
                std::function<void(const std::vector<DeviceRun>&)> done);
  void level(const std::shared_ptr<Request>& r, size_t index);
  void confirm(const std::shared_ptr<Request>& r, size_t index);
  void level_failed(const std::shared_ptr<Request>& r, size_t index, const std::string& why);
  // The level fenced the node: done, or (action reboot) switch its devices back on.
  void fenced(const std::shared_ptr<Request>& r, size_t index);
  void finish(const std::shared_ptr<Request>& r, bool success);
  std::chrono::milliseconds time_left(const Request& r) const;

  boost::asio::io_context& io_;
  Runner& runner_;
  std::shared_ptr<const config::Config> config_;
  StatusSupport supports_status_;
  std::function<void(const std::string&)> alert_;
  std::map<std::string, std::shared_ptr<Request>> requests_;
};

}  // namespace hafront::fence
