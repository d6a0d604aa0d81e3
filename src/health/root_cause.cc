#include "health/root_cause.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>

namespace hafront::health {
namespace {

bool counted(const ServerView& s) { return s.state != ServerState::Drain && s.state != ServerState::Maint; }

bool usable(const ServerView& s) { return s.state == ServerState::Up && s.weight > 0; }

std::string describe(const ServerView& s) {
  std::string out = s.server + " " + to_string(s.state);
  if (!s.reason.empty()) out += " (" + s.reason + ")";
  return out;
}

}  // namespace

ServiceFacts service_facts(const ServiceView& view, const std::vector<std::string>& depends_on) {
  ServiceFacts f;
  f.name = view.name;
  f.depends_on = depends_on;
  size_t counted_n = 0, usable_n = 0, unknown_n = 0;
  std::string bad;
  for (const auto& s : view.servers) {
    if (!counted(s)) continue;
    ++counted_n;
    if (s.state == ServerState::Unknown) ++unknown_n;
    // Single-writer standbys have weight 0 on purpose: they count as usable when up.
    bool ok = view.single_writer ? s.state == ServerState::Up : usable(s);
    if (ok) {
      ++usable_n;
    } else if (s.state != ServerState::Unknown) {
      bad += (bad.empty() ? "" : "; ") + describe(s);
    }
  }
  if (view.servers.empty()) {
    f.state = ServiceState::Down;
    f.reason = "no server configured";
    return f;
  }
  if (counted_n == 0) {
    f.state = ServiceState::Down;
    f.reason = "every server is drained or in maintenance";
    return f;
  }
  if (view.single_writer) {
    if (view.writer) {
      f.state = usable_n == counted_n ? ServiceState::Up : ServiceState::Degraded;
      f.reason = "writer " + *view.writer + (bad.empty() ? "" : "; " + bad);
    } else if (unknown_n > 0 && usable_n + unknown_n == counted_n) {
      f.state = ServiceState::Unknown;
      f.reason = "waiting for the first checks";
    } else {
      f.state = ServiceState::Down;
      f.reason = view.writer_reason.empty() ? "no writer" : view.writer_reason;
    }
    return f;
  }
  if (usable_n == counted_n) {
    f.state = ServiceState::Up;
  } else if (usable_n > 0) {
    f.state = ServiceState::Degraded;
    f.reason = bad;
  } else if (unknown_n > 0) {
    f.state = ServiceState::Unknown;
    f.reason = "waiting for the first checks" + (bad.empty() ? std::string() : "; " + bad);
  } else {
    f.state = ServiceState::Down;
    f.reason = "no usable server: " + bad;
  }
  return f;
}

std::vector<ServiceVerdict> find_root_causes(std::span<const ServiceFacts> services) {
  std::map<std::string, const ServiceFacts*> by_name;
  for (const auto& s : services) by_name[s.name] = &s;

  // roots(S) for a down S: the union of its down dependencies' roots, or {S}.
  std::map<std::string, std::vector<std::string>> memo;
  std::set<std::string> visiting;
  std::function<const std::vector<std::string>&(const ServiceFacts&)> roots =
      [&](const ServiceFacts& s) -> const std::vector<std::string>& {
    if (auto it = memo.find(s.name); it != memo.end()) return it->second;
    visiting.insert(s.name);
    std::vector<std::string> out;
    for (const auto& d : s.depends_on) {
      auto it = by_name.find(d);
      if (it == by_name.end() || it->second->state != ServiceState::Down || visiting.count(d)) continue;
      for (const auto& r : roots(*it->second)) {
        if (std::find(out.begin(), out.end(), r) == out.end()) out.push_back(r);
      }
    }
    if (out.empty()) out.push_back(s.name);
    visiting.erase(s.name);
    return memo[s.name] = std::move(out);
  };

  std::vector<ServiceVerdict> out;
  for (const auto& s : services) {
    ServiceVerdict v;
    v.name = s.name;
    v.state = s.state;
    v.reason = s.reason;
    if (s.state == ServiceState::Down) {
      v.roots = roots(s);
      for (const auto& r : v.roots) {
        const ServiceFacts& root = *by_name.at(r);
        v.root_cause += (v.root_cause.empty() ? "" : "; ") + root.name + ": down — " + root.reason;
      }
    }
    v.text = s.name + ": " + to_string(s.state);
    if (s.state == ServiceState::Down) {
      bool own = v.roots.size() == 1 && v.roots.front() == s.name;
      v.text += own ? " — " + s.reason : " — root cause: " + v.root_cause;
    } else if (!s.reason.empty()) {
      v.text += " — " + s.reason;
    }
    out.push_back(std::move(v));
  }
  // Each root lists the services that are down because of it (other than itself).
  for (auto& root : out) {
    if (root.state != ServiceState::Down) continue;
    for (const auto& v : out) {
      if (v.name != root.name && std::find(v.roots.begin(), v.roots.end(), root.name) != v.roots.end())
        root.affected.push_back(v.name);
    }
  }
  return out;
}

}  // namespace hafront::health
