#include "cluster/placement.h"

#include <algorithm>
#include <limits>

namespace hafront::cluster {
namespace {

// A lost node whose VIPs cannot move yet and which must be fenced.
bool suspect(const NodeView& n) {
  bool gone = !n.member || !n.alive;
  return gone && n.departure == Departure::Unclean && !n.proven_down;
}

// Why node n may not hold vip, or "" if it may.
std::string unfit(const NodeView& n, const std::string& vip) {
  if (!n.member) return n.name + " is not a member";
  if (!n.alive) return n.name + " is not heartbeating";
  if (!n.config_match) return n.name + " runs a different config";
  if (n.standby) return n.name + " is in standby";
  if (!n.servable.count(vip)) return n.name + " cannot serve it";
  return "";
}

}  // namespace

Plan decide(const View& view, const Policy& policy) {
  Plan plan;
  plan.quorate = view.quorate;
  auto node = [&](uint32_t id) -> const NodeView* {
    auto it = std::find_if(view.nodes.begin(), view.nodes.end(), [&](const NodeView& n) { return n.id == id; });
    return it == view.nodes.end() ? nullptr : &*it;
  };

  if (!view.quorate) {
    for (const auto& v : policy.vips) plan.vips.push_back({v.name, std::nullopt, false, "this partition is not quorate"});
    return plan;
  }

  for (const NodeView& n : view.nodes) {
    if (suspect(n)) {
      plan.fence.push_back(n.id);
    }
    if (n.member && !n.config_match) {
      plan.alerts.push_back(n.name + " runs a different config (digest mismatch); it takes no VIP until it matches");
    }
  }
  std::sort(plan.fence.begin(), plan.fence.end());

  std::map<uint32_t, size_t> load;
  for (const VipPolicy& v : policy.vips) {
    VipPlacement p{v.name, std::nullopt, false, ""};
    auto current = view.owners.find(v.name);
    const NodeView* holder = current == view.owners.end() ? nullptr : node(current->second);

    // Rule 2: the holder vanished uncleanly and nothing proves it is down.
    if (holder && suspect(*holder)) {
      p.blocked = true;
      p.reason = "held by " + holder->name +
                 ", which left uncleanly; waiting for proof that it is down (fence or expired lease)";
      plan.alerts.push_back("VIP " + v.name + " is down: " + p.reason);
      plan.vips.push_back(std::move(p));
      continue;
    }

    auto rank = [&](uint32_t id) {
      auto it = std::find(v.prefer.begin(), v.prefer.end(), id);
      return it == v.prefer.end() ? std::numeric_limits<size_t>::max() : static_cast<size_t>(it - v.prefer.begin());
    };
    std::vector<const NodeView*> fit;
    std::string why_not;
    for (const NodeView& n : view.nodes) {
      std::string u = unfit(n, v.name);
      if (u.empty()) {
        fit.push_back(&n);
      } else {
        why_not += (why_not.empty() ? "" : "; ") + u;
      }
    }
    auto better = [&](const NodeView* a, const NodeView* b) {
      auto ka = std::tuple(rank(a->id), policy.spread ? load[a->id] : 0, a->id);
      auto kb = std::tuple(rank(b->id), policy.spread ? load[b->id] : 0, b->id);
      return ka < kb;
    };
    std::sort(fit.begin(), fit.end(), better);

    bool holder_fit = holder && std::find(fit.begin(), fit.end(), holder) != fit.end();
    if (holder_fit) {
      const NodeView* best = fit.front();
      if (v.failback && best != holder && rank(best->id) < rank(holder->id)) {
        p.owner = best->id;
        p.reason = "fails back to " + best->name + " (preferred over " + holder->name + ")";
      } else {
        p.owner = holder->id;
        p.reason = "stays on " + holder->name;
      }
    } else if (!fit.empty()) {
      const NodeView* best = fit.front();
      p.owner = best->id;
      std::string from;
      if (holder) from = " (" + unfit(*holder, v.name) + (holder->proven_down ? ", proven down" : "") + ")";
      p.reason = (holder ? "moves from " + holder->name + " to " : "placed on ") + best->name + from;
    } else {
      p.reason = "no node can hold it: " + why_not;
      plan.alerts.push_back("VIP " + v.name + " is down: " + p.reason);
    }
    if (p.owner) ++load[*p.owner];
    plan.vips.push_back(std::move(p));
  }
  return plan;
}

}  // namespace hafront::cluster
