#include "cluster/placement.h"

#include <algorithm>
#include <limits>
#include <tuple>

namespace hafront::cluster {
namespace {

constexpr size_t kUnpreferred = std::numeric_limits<size_t>::max();

// How node n left ("left the membership uncleanly"), if it is lost without proof that it
// stopped answering, or "" if it is not. Such a node is fenced, and the VIPs it held stay down until proof arrives.
//  - A daemon that stops heartbeating while its Corosync stays a member has left uncleanly
//    by definition (rule 2), whatever departure mark the view carries: its lease may still
//    answer.
//  - A non-member with no departure record (never seen by this partition) is only a suspect
//    when the owner table says it holds a VIP: then nothing proves it released.
std::string lost_unproven(const NodeView& n, bool holds_vip) {
  if (n.proven_down || n.departure == Departure::Clean) return "";
  if (n.member && !n.alive) return "went silent (its daemon stopped heartbeating while its Corosync stays a member)";
  if (!n.member && n.departure == Departure::Unclean) return "left the membership uncleanly";
  if (!n.member && holds_vip) return "is not a member and has no record of a clean leave";
  return "";
}

// Why node n may not hold vip, or "" if it may.
std::string unfit(const NodeView& n, const std::string& vip) {
  if (!n.member) {
    if (n.departure == Departure::Clean) return n.name + " left cleanly";
    if (n.lease_freed.count(vip) && !n.proven_down) return n.name + " was lost and its lease ran out";
    if (n.proven_down) return n.name + " left uncleanly and is proven down";
    return n.name + " is not a member";
  }
  if (!n.alive) {
    if (n.departure == Departure::Clean) return n.name + "'s daemon stopped cleanly";
    if (n.lease_freed.count(vip)) return n.name + "'s daemon is silent and its lease ran out";
    if (n.proven_down) return n.name + "'s daemon is silent and " + n.name + " is proven down";
    return n.name + "'s daemon is silent";
  }
  if (!n.config_match) return n.name + " runs a different config";
  if (n.standby) return n.name + " is in standby";
  if (!n.servable.count(vip)) return n.name + " cannot serve it";
  return "";
}

std::string ordinal(size_t i) {  // 0 -> "1st"
  size_t k = i + 1;
  const char* suffix = (k % 100 >= 11 && k % 100 <= 13) ? "th" : k % 10 == 1 ? "st" : k % 10 == 2 ? "nd" : k % 10 == 3 ? "rd" : "th";
  return std::to_string(k) + suffix;
}

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

}  // namespace

Plan decide(const View& view, const Policy& policy) {
  Plan plan;
  plan.quorate = view.quorate;
  auto node = [&](uint32_t id) -> const NodeView* {
    auto it = std::find_if(view.nodes.begin(), view.nodes.end(), [&](const NodeView& n) { return n.id == id; });
    return it == view.nodes.end() ? nullptr : &*it;
  };

  // Rule 1.
  if (!view.quorate) {
    for (const auto& v : policy.vips) {
      plan.vips.push_back({v.name, std::nullopt, false, "not held: this partition is not quorate"});
    }
    plan.alerts.push_back("this partition is not quorate: it holds no VIP and fences nobody until quorum returns");
    return plan;
  }

  // Rule 2: who is lost without proof (fenced; their VIPs are blocked).
  std::set<uint32_t> holding;
  for (const auto& [vip, id] : view.owners) holding.insert(id);
  std::map<uint32_t, std::string> lost;  // id -> how it left
  for (const NodeView& n : view.nodes) {
    std::string how = lost_unproven(n, holding.count(n.id) > 0);
    if (!how.empty()) {
      lost[n.id] = how;
      plan.fence.push_back(n.id);
      plan.alerts.push_back("fencing " + n.name + ": it " + how + "; nothing proves it is down");
    }
    if (n.member && !n.config_match) {
      plan.alerts.push_back(n.name + " runs a different config (digest mismatch); it takes no VIP until it matches");
    }
  }
  std::sort(plan.fence.begin(), plan.fence.end());

  struct Work {
    const VipPolicy* policy = nullptr;
    const NodeView* holder = nullptr;
    std::vector<const NodeView*> fit;
    std::vector<std::string> why_not;  // one per unfit node, in node order
    bool decided = false;
  };
  std::vector<Work> work;
  plan.vips.reserve(policy.vips.size());
  for (const VipPolicy& v : policy.vips) {
    Work w;
    w.policy = &v;
    auto current = view.owners.find(v.name);
    w.holder = current == view.owners.end() ? nullptr : node(current->second);
    for (const NodeView& n : view.nodes) {
      std::string u = unfit(n, v.name);
      if (u.empty()) {
        w.fit.push_back(&n);
      } else {
        w.why_not.push_back(u);
      }
    }
    work.push_back(std::move(w));
    plan.vips.push_back({v.name, std::nullopt, false, ""});
  }

  auto rank_in = [](const VipPolicy& v, uint32_t id) {
    auto it = std::find(v.prefer.begin(), v.prefer.end(), id);
    return it == v.prefer.end() ? kUnpreferred : static_cast<size_t>(it - v.prefer.begin());
  };
  auto is_fit = [](const Work& w, const NodeView* n) {
    return n && std::find(w.fit.begin(), w.fit.end(), n) != w.fit.end();
  };
  // Unfit nodes the VIP prefers over rank `before` (excluding `skip`), with the reason each.
  auto preferred_unfit = [&](const Work& w, size_t before, const NodeView* skip) {
    std::vector<std::string> out;
    for (size_t i = 0; i < w.policy->prefer.size() && i < before; ++i) {
      const NodeView* n = node(w.policy->prefer[i]);
      if (!n || n == skip || is_fit(w, n)) continue;
      out.push_back(unfit(*n, w.policy->name));
    }
    return out;
  };

  // Pass 1: what does not depend on load. Blocked VIPs (rule 2), VIPs that stay on their
  // holder or fail back to a preferred node (rule 4). Counting these first lets spread see
  // the VIPs that stay put when it places the others.
  std::map<uint32_t, size_t> load;
  for (size_t i = 0; i < work.size(); ++i) {
    Work& w = work[i];
    VipPlacement& p = plan.vips[i];
    const VipPolicy& v = *w.policy;
    if (w.holder && lost.count(w.holder->id) && !w.holder->lease_freed.count(v.name)) {
      p.blocked = true;
      p.reason = w.holder->name + ", its holder, " + lost[w.holder->id] + "; the VIP stays down until " +
                 w.holder->name + " is proven down (confirmed fence or expired lease)";
      w.decided = true;
      continue;
    }
    if (!is_fit(w, w.holder)) continue;
    size_t holder_rank = rank_in(v, w.holder->id);
    const NodeView* best = nullptr;  // the most preferred fit node, if preferred over the holder
    for (const NodeView* n : w.fit) {
      size_t r = rank_in(v, n->id);
      if (r < holder_rank && (!best || r < rank_in(v, best->id))) best = n;
    }
    if (best && v.failback) {
      p.owner = best->id;
      p.reason = "fails back to " + best->name + ", its " + ordinal(rank_in(v, best->id)) + " preference (" +
                 w.holder->name +
                 (holder_rank == kUnpreferred ? " is not in its preference list)"
                                              : " is only its " + ordinal(holder_rank) + ")");
    } else {
      p.owner = w.holder->id;
      p.reason = "stays on " + w.holder->name;
      if (best) {
        p.reason += "; " + best->name + " is preferred but failback is off";
      } else if (v.failback) {
        auto skipped = preferred_unfit(w, holder_rank, w.holder);
        if (!skipped.empty()) p.reason += "; no node preferred over it can hold it (" + join(skipped, ", ") + ")";
      }
    }
    ++load[*p.owner];
    w.decided = true;
  }

  // Pass 2 (rule 5): place the rest, in policy order.
  for (size_t i = 0; i < work.size(); ++i) {
    Work& w = work[i];
    if (w.decided) continue;
    VipPlacement& p = plan.vips[i];
    const VipPolicy& v = *w.policy;
    auto key = [&](const NodeView* n) {
      return std::tuple(rank_in(v, n->id), policy.spread ? load[n->id] : 0, n->id);
    };
    std::sort(w.fit.begin(), w.fit.end(), [&](const NodeView* a, const NodeView* b) { return key(a) < key(b); });

    if (w.fit.empty()) {
      p.reason = "no node can hold it (" + join(w.why_not, ", ") + ")";
      continue;
    }
    std::string head;
    if (w.holder) head = unfit(*w.holder, v.name) + "; ";
    const NodeView* best = w.fit.front();
    size_t r = rank_in(v, best->id);
    std::string why;
    if (r != kUnpreferred) {
      why = "its " + ordinal(r) + " preference";
      auto skipped = preferred_unfit(w, r, w.holder);
      if (!skipped.empty()) why += " (" + join(skipped, ", ") + ")";
    } else {
      std::vector<std::string> ties;
      for (const NodeView* n : w.fit) {
        if (n != best && std::get<0>(key(n)) == r && std::get<1>(key(n)) == std::get<1>(key(best))) {
          ties.push_back(n->name);
        }
      }
      if (policy.spread) {
        why = "the least loaded node (" + std::to_string(load[best->id]) + (load[best->id] == 1 ? " VIP" : " VIPs") +
              (ties.empty() ? "" : "; tied with " + join(ties, ", ") + ", lowest id wins") + ")";
      } else {
        why = ties.empty() ? "the only node that can hold it" : "the lowest id that can hold it";
      }
      auto skipped = preferred_unfit(w, kUnpreferred, w.holder);  // the holder's reason is said already
      if (!skipped.empty()) why += "; no preferred node can (" + join(skipped, ", ") + ")";
    }
    p.owner = best->id;
    p.reason = head + (w.holder ? "moves to " : "placed on ") + best->name + ", " + why;
    ++load[best->id];
  }

  for (const VipPlacement& p : plan.vips) {
    if (!p.owner) plan.alerts.push_back("VIP " + p.vip + " is down: " + p.reason);
  }
  return plan;
}

}  // namespace hafront::cluster
