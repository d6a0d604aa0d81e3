#include "fence/monitor.h"

#include <spdlog/spdlog.h>

namespace hafront::fence {

namespace asio = boost::asio;
using std::chrono::milliseconds;

namespace {
int64_t now_ms() {
  return std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}
}  // namespace

DeviceMonitor::DeviceMonitor(asio::io_context& io, Runner& runner, Alert alert)
    : io_(io), runner_(runner), alert_(std::move(alert)), timer_(io) {}

DeviceMonitor::~DeviceMonitor() { stop(); }

void DeviceMonitor::stop() {
  ++generation_;
  timer_.cancel();
  if (current_) current_->cancel();
  current_.reset();
}

void DeviceMonitor::configure(std::shared_ptr<const config::Config> config) {
  stop();
  config_ = std::move(config);
  std::map<std::string, DeviceHealth> next;
  order_.clear();
  for (const auto& [name, dev] : config_->fence_devices) {
    DeviceHealth h;
    auto old = health_.find(name);
    if (old != health_.end() && old->second.agent == dev.agent) h = old->second;  // keep what was learnt
    h.name = name;
    h.agent = dev.agent;
    h.protects.clear();
    for (const auto& n : config_->cluster.nodes) {
      bool uses = false;
      for (const auto& level : n.fencing) {
        for (const auto& ref : level) uses = uses || ref.device == name;
      }
      if (uses) h.protects.push_back(n.name);
    }
    next[name] = std::move(h);
    order_.push_back(name);
  }
  health_ = std::move(next);
  if (config_->cluster.fencing.monitor_interval.count() > 0 && !order_.empty()) schedule(milliseconds{1000});
}

void DeviceMonitor::schedule(milliseconds after) {
  timer_.expires_after(after);
  uint64_t gen = generation_;
  timer_.async_wait([this, gen](boost::system::error_code ec) {
    if (!ec && gen == generation_) pass();
  });
}

void DeviceMonitor::pass() { check(0); }

void DeviceMonitor::check(size_t index) {
  if (index >= order_.size()) {
    schedule(std::chrono::duration_cast<milliseconds>(config_->cluster.fencing.monitor_interval));
    return;
  }
  const std::string name = order_[index];
  auto dev = config_->fence_devices.find(name);
  if (dev == config_->fence_devices.end()) {
    check(index + 1);
    return;
  }
  AgentRequest req;
  req.agent = dev->second.agent;
  req.action = "monitor";
  req.params = dev->second.params;
  for (const auto& [k, s] : dev->second.secrets) req.secret_files[k] = s.path;
  req.timeout = std::chrono::duration_cast<milliseconds>(dev->second.timeout);
  uint64_t gen = generation_;
  current_ = runner_.run(req, [this, gen, name, index](AgentResult r) {
    if (gen != generation_) return;
    current_.reset();
    auto it = health_.find(name);
    if (it != health_.end()) {
      DeviceHealth& h = it->second;
      std::string before = h.state;
      h.checked_ms = now_ms();
      h.elapsed_ms = r.elapsed.count();
      h.state = r.ok() ? "ok" : "failed";
      h.reason = r.ok() ? "" : r.describe();
      std::string nodes;
      for (const auto& n : h.protects) nodes += (nodes.empty() ? "" : ", ") + n;
      if (h.state == "failed" && before != "failed") {
        spdlog::error("fence device {} ({}) does not answer: {}", name, h.agent, h.reason);
        if (alert_) {
          alert_("fence device " + name + " does not answer (" + h.reason + "); " +
                 (nodes.empty() ? std::string("no node uses it") : "fencing of " + nodes + " depends on it"));
        }
      } else if (h.state == "ok" && before == "failed") {
        spdlog::info("fence device {} answers again", name);
        if (alert_) alert_("resolved: fence device " + name + " answers again");
      }
    }
    check(index + 1);
  });
}

std::vector<DeviceHealth> DeviceMonitor::snapshot() const {
  std::vector<DeviceHealth> out;
  for (const auto& [name, h] : health_) out.push_back(h);
  return out;
}

}  // namespace hafront::fence
