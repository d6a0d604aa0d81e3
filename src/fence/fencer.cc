#include "fence/fencer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

namespace hafront::fence {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct Fencer::Request {
  explicit Request(asio::io_context& io) : timer(io) {}
  std::string node;
  std::shared_ptr<const config::Config> config;  // as it was when the request started
  config::FenceTopology levels;
  Done done;
  FenceOutcome outcome;
  Clock::time_point deadline;
  asio::steady_timer timer;
  std::vector<std::shared_ptr<Runner::Handle>> handles;  // runs of the current step
  size_t pending = 0;
  // The latest failure of each level, over every round: when the time runs out in the
  // middle of a round, the reason still says why each level failed.
  std::map<size_t, std::string> failures;
  bool cancelled = false;
};

Fencer::Fencer(asio::io_context& io, Runner& runner) : io_(io), runner_(runner) {}

Fencer::~Fencer() { cancel_all(); }

std::vector<std::string> Fencer::in_progress() const {
  std::vector<std::string> out;
  for (const auto& [node, r] : requests_) out.push_back(node);
  return out;
}

void Fencer::cancel(const std::string& node) {
  auto it = requests_.find(node);
  if (it == requests_.end()) return;
  auto r = it->second;
  requests_.erase(it);
  r->cancelled = true;
  r->timer.cancel();
  for (auto& h : r->handles) h->cancel();
  r->handles.clear();
  spdlog::info("fencing of {} cancelled", node);
}

void Fencer::cancel_all() {
  while (!requests_.empty()) cancel(requests_.begin()->first);
}

milliseconds Fencer::time_left(const Request& r) const {
  return std::max(milliseconds{0}, std::chrono::duration_cast<milliseconds>(r.deadline - Clock::now()));
}

bool Fencer::fence(const std::string& node, milliseconds delay, Done done) {
  if (requests_.count(node)) return false;
  auto r = std::make_shared<Request>(io_);
  r->node = node;
  r->config = config_;
  r->done = std::move(done);
  r->outcome.node = node;
  r->outcome.requested = std::chrono::system_clock::now();
  r->outcome.delay = delay;
  if (config_) {
    if (const config::Node* n = config_->find_node(node)) r->levels = n->fencing;
  }
  requests_[node] = r;
  if (delay.count() > 0) spdlog::info("fencing {} in {} ms (fence race delay)", node, delay.count());
  r->timer.expires_after(delay);
  r->timer.async_wait([this, r](boost::system::error_code ec) {
    if (ec || r->cancelled) return;
    r->outcome.started = std::chrono::system_clock::now();
    // The deadline starts with the work, not with the delay.
    milliseconds budget = r->config ? std::chrono::duration_cast<milliseconds>(r->config->cluster.fencing.timeout)
                                    : milliseconds{60000};
    r->deadline = Clock::now() + budget;
    if (r->levels.empty()) {
      r->outcome.reason = "node " + r->node + " has no fencing levels configured";
      finish(r, false);
      return;
    }
    round(r);
  });
  return true;
}

void Fencer::round(const std::shared_ptr<Request>& r) {
  ++r->outcome.rounds;
  spdlog::warn("fencing {}: attempt {}", r->node, r->outcome.rounds);
  level(r, 0);
}

void Fencer::run_step(const std::shared_ptr<Request>& r, size_t index, const std::vector<size_t>& which,
                      const std::string& action, milliseconds cap,
                      std::function<void(const std::vector<DeviceRun>&)> done) {
  const auto& refs = r->levels[index];
  r->handles.clear();
  r->pending = which.size();
  auto runs = std::make_shared<std::vector<DeviceRun>>(which.size());
  for (size_t k = 0; k < which.size(); ++k) {
    const config::FenceRef& ref = refs[which[k]];
    DeviceRun& dr = (*runs)[k];
    dr.round = r->outcome.rounds;
    dr.level = static_cast<int>(index) + 1;
    dr.device = ref.device;
    dr.plug = ref.plug;
    dr.action = action;
    AgentRequest req;
    auto dev = r->config->fence_devices.find(ref.device);
    if (dev != r->config->fence_devices.end()) {
      req.agent = dev->second.agent;
      req.params = dev->second.params;
      for (const auto& [key, secret] : dev->second.secrets) req.secret_files[key] = secret.path;
      req.timeout = std::min(cap, std::chrono::duration_cast<milliseconds>(dev->second.timeout));
    } else {
      req.agent = "(unknown device " + ref.device + ")";  // resolves to nothing: not installed
    }
    req.action = action;
    req.plug = ref.plug;
    spdlog::info("fencing {}: level {} device {} {}", r->node, dr.level, dr.label(), action);
    r->handles.push_back(runner_.run(req, [r, runs, k, done](AgentResult res) {
      if (r->cancelled) return;
      (*runs)[k].result = std::move(res);
      if (--r->pending > 0) return;
      for (const auto& x : *runs) {
        spdlog::log(x.result.ok() || x.result.answer == Answer::Off ? spdlog::level::info : spdlog::level::warn,
                    "fencing {}: {} {}: {} ({} ms)", r->node, x.label(), x.action, x.result.describe(),
                    x.result.elapsed.count());
      }
      done(*runs);
    }));
  }
}

void Fencer::level(const std::shared_ptr<Request>& r, size_t index) {
  milliseconds left = time_left(*r);
  if (left.count() == 0) {
    level_failed(r, index, "the fencing time-out ran out");
    return;
  }
  std::vector<size_t> all(r->levels[index].size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  run_step(r, index, all, "off", left, [this, r, index](const std::vector<DeviceRun>& runs) {
    std::string why;
    for (const auto& x : runs) {
      r->outcome.runs.push_back(x);
      if (!x.result.ok()) why += (why.empty() ? "" : "; ") + x.label() + " off: " + x.result.describe();
    }
    if (!why.empty()) {
      level_failed(r, index, why);
    } else {
      confirm(r, index);
    }
  });
}

void Fencer::confirm(const std::shared_ptr<Request>& r, size_t index) {
  const auto& refs = r->levels[index];
  std::vector<size_t> which;
  for (size_t i = 0; i < refs.size(); ++i) {
    auto dev = r->config->fence_devices.find(refs[i].device);
    if (dev != r->config->fence_devices.end() && (!supports_status_ || supports_status_(dev->second.agent))) {
      which.push_back(i);
    }
  }
  if (which.empty()) {
    fenced(r, index);
    return;
  }
  milliseconds left = std::max(time_left(*r), milliseconds{1000});  // a confirmation gets a chance
  run_step(r, index, which, "status", left, [this, r, index](const std::vector<DeviceRun>& runs) {
    std::string why;
    for (const auto& x : runs) {
      r->outcome.runs.push_back(x);
      bool off = x.result.exec == ExecStatus::Done && x.result.answer == Answer::Off;
      if (!off) why += (why.empty() ? "" : "; ") + x.label() + " status after off: " + x.result.describe();
    }
    if (!why.empty()) {
      level_failed(r, index, why);
      return;
    }
    fenced(r, index);
  });
}

void Fencer::fenced(const std::shared_ptr<Request>& r, size_t index) {
  r->outcome.level = static_cast<int>(index) + 1;
  for (const auto& ref : r->levels[index]) r->outcome.devices.push_back(ref.plug ? ref.device + ":" + *ref.plug : ref.device);
  finish(r, true);  // the confirmed off is the proof: report it now
  if (r->config->cluster.fencing.action != config::FenceAction::Reboot) return;
  // Reboot, the way Pacemaker does it over several devices: every device of the level
  // off and confirmed (done), then every device on. The node boots fresh, holding
  // nothing, so the VIPs need not wait for this; a device that does not switch back on is
  // an alert, not a failed fence.
  std::vector<size_t> all(r->levels[index].size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  run_step(r, index, all, "on", milliseconds::max(), [this, r](const std::vector<DeviceRun>& runs) {
    r->handles.clear();
    std::string why;
    for (const auto& x : runs) {
      if (!x.result.ok()) why += (why.empty() ? "" : "; ") + x.label() + " on: " + x.result.describe();
    }
    if (why.empty()) {
      spdlog::info("fencing {}: powered back on (reboot)", r->node);
      return;
    }
    spdlog::error("fencing {}: off and confirmed, but powering it back on failed: {}", r->node, why);
    if (alert_) alert_("node " + r->node + " was fenced (off, confirmed) but did not power back on: " + why);
  });
}

void Fencer::level_failed(const std::shared_ptr<Request>& r, size_t index, const std::string& why) {
  r->failures[index] = "level " + std::to_string(index + 1) + ": " + why + " (attempt " +
                      std::to_string(r->outcome.rounds) + ")";
  spdlog::warn("fencing {}: level {} failed: {}", r->node, index + 1, why);
  if (index + 1 < r->levels.size() && time_left(*r).count() > 0) {
    level(r, index + 1);
    return;
  }
  milliseconds backoff{1000 << std::min(r->outcome.rounds - 1, 3)};
  if (time_left(*r) <= backoff) {
    finish(r, false);
    return;
  }
  r->timer.expires_after(backoff);
  r->timer.async_wait([this, r](boost::system::error_code ec) {
    if (!ec && !r->cancelled) round(r);
  });
}

void Fencer::finish(const std::shared_ptr<Request>& r, bool success) {
  r->outcome.success = success;
  r->outcome.finished = std::chrono::system_clock::now();
  if (!success && r->outcome.reason.empty()) {
    std::string reason;
    for (const auto& [index, f] : r->failures) reason += (reason.empty() ? "" : " | ") + f;
    r->outcome.reason = "every level failed (" + std::to_string(r->outcome.rounds) + " attempt(s)); latest: " + reason;
  }
  auto it = requests_.find(r->node);
  if (it != requests_.end() && it->second == r) requests_.erase(it);
  if (r->done) r->done(r->outcome);
}

}  // namespace hafront::fence
