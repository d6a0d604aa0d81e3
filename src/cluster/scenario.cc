#include "cluster/scenario.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "config/yaml_reader.h"

namespace hafront::cluster {
namespace {

using config::detail::Context;
using config::detail::MapView;
using config::detail::Value;

}  // namespace

ScenarioLoad parse_scenario(const std::string& text, const std::string& name) {
  ScenarioLoad out;
  Context ctx(name, out.errors);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    ctx.error(e.mark, "YAML syntax error: " + e.msg);
    return out;
  }
  Scenario sc;
  MapView top(ctx, Value{root, {"", root.Mark()}}, {"description", "quorate", "spread", "nodes", "vips"},
              {"description", "quorate", "nodes", "vips"});
  if (!top.valid()) return out;
  top.get("description", sc.description);
  top.get("quorate", sc.view.quorate);
  top.get("spread", sc.policy.spread);

  struct PendingVip {
    VipPolicy policy;
    std::optional<std::string> owner;
    std::vector<std::string> prefer;
    config::detail::Place place;
  };
  std::vector<PendingVip> vips;
  if (auto v = top.find("vips")) {
    config::detail::for_each_item(ctx, *v, [&](const Value& item) {
      MapView m(ctx, item, {"name", "owner", "prefer", "failback"}, {"name"});
      if (!m.valid()) return;
      PendingVip p;
      p.place = item.place;
      m.get("name", p.policy.name);
      m.get("owner", p.owner);
      m.get("failback", p.policy.failback);
      if (auto pr = m.find("prefer")) p.prefer = config::detail::read_string_list(ctx, *pr);
      vips.push_back(std::move(p));
    });
  }
  std::vector<std::string> all_vips;
  for (const auto& p : vips) all_vips.push_back(p.policy.name);

  if (auto n = top.find("nodes")) {
    config::detail::for_each_item(ctx, *n, [&](const Value& item) {
      MapView m(ctx, item,
                {"name", "id", "member", "alive", "standby", "config_match", "servable", "departure", "proven_down",
                 "lease_expired"},
                {"name", "id"});
      if (!m.valid()) return;
      NodeView nv;
      nv.member = true;
      m.get("name", nv.name);
      uint32_t id = 0;
      m.get("id", id, 1, 0x7fffffff);
      nv.id = id;
      m.get("member", nv.member);
      m.get("alive", nv.alive);
      m.get("standby", nv.standby);
      m.get("config_match", nv.config_match);
      m.get("proven_down", nv.proven_down);
      m.get("departure", nv.departure,
            {{"none", Departure::None}, {"clean", Departure::Clean}, {"unclean", Departure::Unclean}});
      if (auto s = m.find("servable")) {
        for (const auto& x : config::detail::read_string_list(ctx, *s)) {
          if (std::find(all_vips.begin(), all_vips.end(), x) == all_vips.end()) {
            ctx.error(s->place.mark, s->place.path + ": unknown VIP '" + x + "'");
          }
          nv.servable.insert(x);
        }
      } else {
        nv.servable.insert(all_vips.begin(), all_vips.end());
      }
      // The VIPs it gated with a lease that every member attested ran out.
      if (auto l = m.find("lease_expired")) {
        for (const auto& x : config::detail::read_string_list(ctx, *l)) {
          if (std::find(all_vips.begin(), all_vips.end(), x) == all_vips.end()) {
            ctx.error(l->place.mark, l->place.path + ": unknown VIP '" + x + "'");
          }
          nv.lease_freed.insert(x);
        }
      }
      if (std::any_of(sc.view.nodes.begin(), sc.view.nodes.end(),
                      [&](const NodeView& o) { return o.id == nv.id || o.name == nv.name; })) {
        ctx.error(item.place.mark, item.place.path + ": duplicate node name or id");
      }
      sc.view.nodes.push_back(std::move(nv));
    });
  }
  auto id_of = [&](const std::string& node_name) -> std::optional<uint32_t> {
    for (const auto& n : sc.view.nodes) {
      if (n.name == node_name) return n.id;
    }
    return std::nullopt;
  };
  for (auto& p : vips) {
    for (const auto& pr : p.prefer) {
      if (auto id = id_of(pr)) {
        p.policy.prefer.push_back(*id);
      } else {
        ctx.error(p.place.mark, p.place.path + ".prefer: unknown node '" + pr + "'");
      }
    }
    if (p.owner) {
      if (auto id = id_of(*p.owner)) {
        sc.view.owners[p.policy.name] = *id;
      } else {
        ctx.error(p.place.mark, p.place.path + ".owner: unknown node '" + *p.owner + "'");
      }
    }
    sc.policy.vips.push_back(p.policy);
  }
  if (ctx.error_count() == 0) out.scenario = std::move(sc);
  return out;
}

ScenarioLoad load_scenario(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    ScenarioLoad out;
    config::Diagnostic d;
    d.file = path;
    d.message = "cannot open the scenario file";
    out.errors.push_back(d);
    return out;
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  return parse_scenario(buf.str(), path);
}

Scenario scenario_from_config(const config::Config& c) {
  Scenario sc;
  sc.description = "steady state of " + c.source_path + ": every node up and able, nothing held yet";
  sc.view.quorate = true;
  std::vector<config::Node> nodes = c.cluster.nodes;
  if (nodes.empty()) nodes.push_back(config::Node{"this-node", 1, {}, {}});  // standalone without a node list
  for (const auto& n : nodes) {
    NodeView nv;
    nv.id = n.id;
    nv.name = n.name;
    nv.member = true;
    for (const auto& v : c.vips) nv.servable.insert(v.name);
    sc.view.nodes.push_back(std::move(nv));
  }
  sc.policy.spread = false;
  for (const auto& v : c.vips) {
    VipPolicy vp;
    vp.name = v.name;
    vp.failback = v.failback;
    for (const auto& p : v.prefer) {
      if (const config::Node* n = c.find_node(p)) vp.prefer.push_back(n->id);
    }
    sc.policy.vips.push_back(std::move(vp));
  }
  return sc;
}

std::string render(const Scenario& sc, const Plan& plan) {
  std::ostringstream o;
  auto name_of = [&](uint32_t id) {
    for (const auto& n : sc.view.nodes) {
      if (n.id == id) return n.name;
    }
    return "node " + std::to_string(id);
  };
  o << "scenario: " << sc.description << "\n";
  std::string members;
  for (const auto& n : sc.view.nodes) {
    if (n.member) members += (members.empty() ? "" : ", ") + n.name;
  }
  o << "partition: " << (sc.view.quorate ? "quorate" : "NOT quorate") << "; members: "
    << (members.empty() ? "none" : members) << (sc.policy.spread ? "; spread VIPs" : "") << "\n";
  o << "nodes:\n";
  for (const auto& n : sc.view.nodes) {
    std::vector<std::string> facts;
    facts.push_back(n.member ? "member" : "not a member");
    if (!n.alive) facts.push_back("silent (no heartbeats)");
    if (n.departure == Departure::Clean) facts.push_back("left cleanly");
    if (n.departure == Departure::Unclean) facts.push_back("left uncleanly");
    if (n.proven_down) facts.push_back("proven down");
    if (!n.lease_freed.empty()) {
      std::string l;
      for (const auto& v : n.lease_freed) l += (l.empty() ? "" : " ") + v;
      facts.push_back("lease ran out (" + l + ")");
    }
    if (n.standby) facts.push_back("standby");
    if (!n.config_match) facts.push_back("config mismatch");
    std::string serves;
    for (const auto& v : sc.policy.vips) {
      if (n.servable.count(v.name)) serves += (serves.empty() ? "" : " ") + v.name;
    }
    std::string line = "  " + n.name + " (" + std::to_string(n.id) + "): ";
    for (size_t i = 0; i < facts.size(); ++i) line += (i ? ", " : "") + facts[i];
    o << line << "; can serve: " << (serves.empty() ? "nothing" : serves) << "\n";
  }
  o << "plan:\n";
  for (const auto& p : plan.vips) {
    auto was = sc.view.owners.find(p.vip);
    std::string from = was == sc.view.owners.end() ? "-" : name_of(was->second);
    std::string to = p.owner ? name_of(*p.owner) : (p.blocked ? "BLOCKED" : "none");
    o << "  " << p.vip << ": " << from << " -> " << to << "  (" << p.reason << ")\n";
  }
  o << "fence:";
  if (plan.fence.empty()) o << " nobody";
  for (uint32_t id : plan.fence) o << " " << name_of(id);
  o << "\n";
  if (!plan.alerts.empty()) {
    o << "alerts:\n";
    for (const auto& a : plan.alerts) o << "  - " << a << "\n";
  }
  return o.str();
}

}  // namespace hafront::cluster
