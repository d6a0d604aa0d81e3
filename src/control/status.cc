#include "control/status.h"

#include <cctype>
#include <ctime>
#include <iomanip>
#include <sstream>

namespace hafront::control {
namespace json = boost::json;

namespace {
json::array strings(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& x : v) a.push_back(json::value(x));
  return a;
}

json::object counts(const ErrorCounts& v) {
  json::object o;
  for (const auto& [kind, n] : v) o[kind] = n;
  return o;
}

// http mode: "requests", "responses" by class, and for servers "response_time_us".
void add_http(json::object& o, const std::optional<HttpCounts>& h, bool server) {
  if (!h) return;
  o["requests"] = h->requests;
  json::object responses;
  for (size_t k = 0; k < h->responses.size(); ++k) responses[std::to_string(k + 1) + "xx"] = h->responses[k];
  o["responses"] = std::move(responses);
  if (!server) return;
  json::array bounds, hits;
  for (const auto& [le, n] : h->response_time_us) {
    bounds.push_back(le == 0 ? json::value(nullptr) : json::value(le));
    hits.push_back(n);
  }
  auto opt = [](const std::optional<uint64_t>& v) { return v ? json::value(*v) : json::value(nullptr); };
  o["response_time_us"] = json::object{{"le", std::move(bounds)},
                                       {"count", std::move(hits)},
                                       {"p50", opt(h->response_p50_us)},
                                       {"p99", opt(h->response_p99_us)}};
}

json::value to_json(const std::optional<ServiceTraffic>& t) {
  if (!t) return nullptr;
  json::object o{{"connections", t->connections},
                 {"active", t->active},
                 {"queued", t->queued},
                 {"bytes_from_clients", t->bytes_from_clients},
                 {"bytes_to_clients", t->bytes_to_clients},
                 {"errors", counts(t->errors)}};
  add_http(o, t->http, false);
  return o;
}

json::value to_json(const std::optional<EjectionStatus>& e) {
  if (!e) return nullptr;
  return json::object{{"reason", e->reason}, {"until", e->until}, {"backoff_ms", e->backoff_ms},
                      {"ejections", e->ejections}};
}

json::object health_json(const ServerStatus& srv) {
  json::object evidence;
  for (const auto& [k, v] : srv.evidence) evidence[k] = v;
  return json::object{{"since", srv.since.empty() ? json::value(nullptr) : json::value(srv.since)},
                      {"weight", srv.weight ? json::value(*srv.weight) : json::value(nullptr)},
                      {"role", srv.role.empty() ? json::value(nullptr) : json::value(srv.role)},
                      {"admin", srv.admin.empty() ? json::value(nullptr) : json::value(srv.admin)},
                      {"last_check", srv.last_check.empty()
                                         ? json::value(nullptr)
                                         : json::value(json::object{{"ok", srv.last_ok.value_or(false)},
                                                                    {"at", srv.last_check},
                                                                    {"reason", srv.last_reason},
                                                                    {"evidence", std::move(evidence)}})},
                      {"ejection", to_json(srv.ejection)}};
}

json::value to_json(const std::optional<ServerTraffic>& t) {
  if (!t) return nullptr;
  json::array bounds, hits;
  for (const auto& [le, n] : t->connect_time_us) {
    bounds.push_back(le == 0 ? json::value(nullptr) : json::value(le));
    hits.push_back(n);
  }
  auto opt = [](const std::optional<uint64_t>& v) { return v ? json::value(*v) : json::value(nullptr); };
  json::object o{{"connections", t->connections},
                 {"active", t->active},
                 {"bytes_to_server", t->bytes_to_server},
                 {"bytes_from_server", t->bytes_from_server},
                 {"errors", counts(t->errors)},
                 {"connect_time_us", json::object{{"le", std::move(bounds)},
                                                  {"count", std::move(hits)},
                                                  {"p50", opt(t->connect_p50_us)},
                                                  {"p99", opt(t->connect_p99_us)}}}};
  add_http(o, t->http, true);
  return o;
}
}  // namespace

json::value to_json(const cluster::FenceEvent& e) {
  return json::object{{"target", e.target},   {"executor", e.executor},     {"result", e.result}, {"action", e.action},
                      {"level", e.level},     {"devices", strings(e.devices)}, {"reason", e.reason},
                      {"rounds", e.rounds},   {"requested_ms", e.requested_ms}, {"started_ms", e.started_ms},
                      {"finished_ms", e.finished_ms}, {"delay_ms", e.delay_ms}};
}

json::value to_json(const Status& s) {
  json::array members;
  for (const auto& m : s.cluster.members) members.push_back(json::object{{"name", m.name}, {"id", m.id}});
  json::array nodes, fence, plan_alerts;
  for (const auto& n : s.cluster.nodes) {
    nodes.push_back(json::object{{"name", n.name}, {"id", n.id}, {"member", n.member}, {"alive", n.alive},
                                 {"standby", n.standby}, {"config_match", n.config_match},
                                 {"proven_down", n.proven_down}, {"departure", n.departure}});
  }
  for (const auto& f : s.cluster.fence) fence.push_back(json::value(f));
  for (const auto& a : s.cluster.plan_alerts) plan_alerts.push_back(json::value(a));
  json::array devices;
  for (const auto& d : s.cluster.fence_devices) {
    devices.push_back(json::object{{"name", d.name}, {"agent", d.agent}, {"state", d.state}, {"reason", d.reason},
                                   {"checked_ms", d.checked_ms}, {"elapsed_ms", d.elapsed_ms},
                                   {"protects", strings(d.protects)}});
  }
  json::array vips;
  for (const auto& v : s.vips) {
    vips.push_back(json::object{{"name", v.name},
                                {"address", v.address},
                                {"interface", v.interface},
                                {"driver", v.driver},
                                {"driver_note", v.driver_note},
                                {"lease_ms_left", v.lease_ms_left ? json::value(*v.lease_ms_left) : json::value(nullptr)},
                                {"holder", v.holder ? json::value(*v.holder) : json::value(nullptr)},
                                {"state", v.state},
                                {"reason", v.reason},
                                {"servable", v.servable ? json::value(*v.servable) : json::value(nullptr)},
                                {"servable_reason", v.servable_reason}});
  }
  json::array services;
  for (const auto& svc : s.services) {
    json::array servers;
    for (const auto& srv : svc.servers) {
      servers.push_back(json::object{{"name", srv.name},
                                     {"address", srv.address},
                                     {"state", srv.state},
                                     {"reason", srv.reason},
                                     {"counters", to_json(srv.traffic)},
                                     {"passive", counts(srv.passive)},
                                     {"health", health_json(srv)}});
    }
    json::array listen;
    for (const auto& l : svc.listen) listen.push_back(json::value(l));
    services.push_back(json::object{{"name", svc.name},
                                    {"mode", svc.mode},
                                    {"balance", svc.balance},
                                    {"listen", std::move(listen)},
                                    {"state", svc.state},
                                    {"note", svc.note},
                                    {"counters", to_json(svc.traffic)},
                                    {"health", json::object{{"state", svc.health.empty() ? "unknown" : svc.health},
                                                            {"reason", svc.health_reason},
                                                            {"root_cause", svc.root_cause},
                                                            {"affected", strings(svc.affected)},
                                                            {"writer", svc.writer ? json::value(*svc.writer)
                                                                                  : json::value(nullptr)},
                                                            {"writer_reason", svc.writer_reason}}},
                                    {"servers", std::move(servers)}});
  }
  const DataPlaneStatus& dp = s.data_plane;
  json::object data_plane{{"running", dp.running},
                          {"backend", dp.backend},
                          {"note", dp.note},
                          {"workers", dp.workers},
                          {"passive_events_dropped", dp.passive_events_dropped},
                          {"access_log_dropped", dp.access_log_dropped}};
  json::array reload_errors;
  for (const auto& e : s.config.last_reload_errors) reload_errors.push_back(json::value(e));
  json::array alerts;
  for (const auto& a : s.alerts) alerts.push_back(json::object{{"at", a.at}, {"message", a.message}});
  json::array active, sinks;
  for (const auto& a : s.active_alerts) {
    active.push_back(json::object{{"id", a.id}, {"severity", a.severity}, {"summary", a.summary},
                                  {"root_cause", a.root_cause}, {"affected", strings(a.affected)}, {"since", a.since}});
  }
  for (const auto& k : s.alert_sinks) {
    sinks.push_back(json::object{{"name", k.name}, {"sent", k.sent}, {"failed", k.failed}, {"dropped", k.dropped},
                                 {"rate_limited", k.rate_limited}, {"last_error", k.last_error}});
  }
  return json::object{
      {"node", s.node},
      {"standby", s.standby},
      {"alerts", std::move(alerts)},
      {"active_alerts", std::move(active)},
      {"alert_sinks", std::move(sinks)},
      {"version", s.version},
      {"pid", s.pid},
      {"uptime_seconds", s.uptime_seconds},
      {"cluster",
       json::object{{"name", s.cluster.name}, {"mode", s.cluster.mode}, {"quorate", s.cluster.quorate},
                    {"members", std::move(members)},
                    {"coordinator", s.cluster.coordinator ? json::value(*s.cluster.coordinator) : json::value(nullptr)},
                    {"nodes", std::move(nodes)}, {"fence", std::move(fence)}, {"alerts", std::move(plan_alerts)},
                    {"fencing", strings(s.cluster.fencing)}, {"fence_devices", std::move(devices)},
                    {"last_fence", s.cluster.last_fence ? to_json(*s.cluster.last_fence) : json::value(nullptr)}}},
      {"vips", std::move(vips)},
      {"services", std::move(services)},
      {"data_plane", std::move(data_plane)},
      {"config",
       json::object{{"path", s.config.path},
                    {"sha256", s.config.sha256},
                    {"loaded_at", s.config.loaded_at},
                    {"last_reload",
                     json::object{{"ok", s.config.last_reload_ok},
                                  {"at", s.config.last_reload_at.empty() ? json::value(nullptr)
                                                                         : json::value(s.config.last_reload_at)},
                                  {"errors", std::move(reload_errors)}}}}},
  };
}

namespace {

// Field accessors that never throw: a malformed reply shows '?' rather than crashing.
std::string str(const json::value& v, std::string_view key) {
  if (!v.is_object()) return "?";
  const auto* f = v.get_object().if_contains(key);
  if (!f) return "?";
  if (f->is_string()) return std::string(f->get_string());
  if (f->is_null()) return "-";
  return json::serialize(*f);
}

const json::array& arr(const json::value& v, std::string_view key) {
  static const json::array kEmpty;
  if (!v.is_object()) return kEmpty;
  const auto* f = v.get_object().if_contains(key);
  return f && f->is_array() ? f->get_array() : kEmpty;
}

const json::value& obj(const json::value& v, std::string_view key) {
  static const json::value kNull;
  if (!v.is_object()) return kNull;
  const auto* f = v.get_object().if_contains(key);
  return f ? *f : kNull;
}

std::string pad(std::string s, size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

// A whole number field, or nullopt.
std::optional<uint64_t> num(const json::value& v, std::string_view key) {
  if (!v.is_object()) return std::nullopt;
  const auto* f = v.get_object().if_contains(key);
  if (!f) return std::nullopt;
  if (f->is_uint64()) return f->get_uint64();
  if (f->is_int64() && f->get_int64() >= 0) return static_cast<uint64_t>(f->get_int64());
  return std::nullopt;
}

std::string count(const json::value& v, std::string_view key) {
  auto n = num(v, key);
  return n ? std::to_string(*n) : "?";
}

std::string bytes(const json::value& v, std::string_view key) {
  auto n = num(v, key);
  if (!n) return "?";
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double x = static_cast<double>(*n);
  size_t unit = 0;
  while (x >= 1024 && unit + 1 < std::size(kUnits)) {
    x /= 1024;
    ++unit;
  }
  std::ostringstream out;
  if (unit == 0) {
    out << *n << " B";
  } else {
    out << std::fixed << std::setprecision(1) << x << " " << kUnits[unit];
  }
  return out.str();
}

std::string kinds(const json::value& v, std::string_view key) {
  std::string out;
  const auto& o = obj(v, key);
  if (!o.is_object()) return out;
  for (const auto& [kind, n] : o.get_object()) {
    out += (out.empty() ? "" : ", ") + std::string(kind) + " " + (n.is_number() ? json::serialize(n) : "?");
  }
  return out;
}

// "2xx 10, 5xx 1": the response classes that were counted (http mode).
std::string responses(const json::value& counters) {
  std::string out;
  const auto& o = obj(counters, "responses");
  if (o.is_object()) {
    for (const auto& [cls, n] : o.get_object()) {
      auto v = num(o, cls);
      if (v && *v > 0) out += (out.empty() ? "" : ", ") + std::string(cls) + " " + std::to_string(*v);
    }
  }
  return out.empty() ? "no responses" : out;
}

std::string micros(const json::value& v, std::string_view key) {
  auto n = num(v, key);
  if (!n) return "?";
  if (*n == UINT64_MAX) return "more than the last bucket";
  std::ostringstream out;
  if (*n < 1000) {
    out << *n << "us";
  } else {
    out << std::fixed << std::setprecision(*n % 1000 == 0 ? 0 : 1) << static_cast<double>(*n) / 1000 << "ms";
  }
  return out.str();
}

}  // namespace

std::string render_text(const json::value& s) {
  std::ostringstream out;
  const auto& cluster = obj(s, "cluster");
  out << "node " << str(s, "node") << " — hafront " << str(s, "version") << ", pid " << str(s, "pid")
      << ", up " << str(s, "uptime_seconds") << "s\n";
  std::string members;
  for (const auto& m : arr(cluster, "members")) members += (members.empty() ? "" : ", ") + str(m, "name");
  std::string quorate = str(cluster, "quorate");
  out << "cluster " << str(cluster, "name") << " (" << str(cluster, "mode") << "): "
      << (quorate == "true" ? "quorate" : quorate == "false" ? "NOT quorate" : "quorum ?")
      << ", members: " << (members.empty() ? "none" : members) << "\n";
  if (str(s, "standby") == "true") out << "this node is in STANDBY: it holds no VIP\n";
  for (const auto& n : arr(cluster, "nodes")) {
    std::string facts = str(n, "member") == "true" ? "member" : "not a member";
    if (str(n, "alive") == "false") facts += ", SILENT";
    if (str(n, "departure") == "unclean") facts += ", left uncleanly";
    if (str(n, "departure") == "clean") facts += ", left cleanly";
    if (str(n, "proven_down") == "true") facts += ", proven down";
    if (str(n, "standby") == "true") facts += ", standby";
    if (str(n, "config_match") == "false") facts += ", CONFIG MISMATCH";
    if (str(cluster, "coordinator") == str(n, "name")) facts += ", coordinator";
    out << "  " << pad(str(n, "name"), 12) << facts << "\n";
  }
  for (const auto& f : arr(cluster, "fence")) out << "  to fence: " << (f.is_string() ? std::string(f.get_string()) : "?") << "\n";
  for (const auto& f : arr(cluster, "fencing")) out << "  fencing now: " << (f.is_string() ? std::string(f.get_string()) : "?") << "\n";
  for (const auto& a : arr(cluster, "alerts")) out << "  ! " << (a.is_string() ? std::string(a.get_string()) : "?") << "\n";
  const auto& last = obj(cluster, "last_fence");
  if (last.is_object()) {
    out << "  last fence: " << str(last, "target") << " " << str(last, "result") << " by " << str(last, "executor");
    if (str(last, "result") == "failed") out << " — " << str(last, "reason");
    out << "\n";
  }
  const auto& devices = arr(cluster, "fence_devices");
  if (!devices.empty()) {
    out << "fence devices:";
    for (const auto& d : devices) {
      out << " " << str(d, "name") << "=" << str(d, "state");
      if (str(d, "state") == "failed") out << " (" << str(d, "reason") << ")";
    }
    out << "\n";
  }

  const auto& vips = arr(s, "vips");
  out << "\nVIPs (" << vips.size() << ")\n";
  for (const auto& v : vips) {
    out << "  " << pad(str(v, "name"), 14) << pad(str(v, "address"), 22) << pad(str(v, "interface"), 8)
        << pad(str(v, "state"), 11) << "holder " << pad(str(v, "holder"), 10) << "driver " << str(v, "driver");
    if (const auto* left = v.is_object() ? v.get_object().if_contains("lease_ms_left") : nullptr;
        left && left->is_int64()) {
      out << (left->get_int64() > 0 ? " (lease " + std::to_string(left->get_int64()) + " ms left)" : " (lease expired)");
    }
    std::string note = str(v, "driver_note");
    if (!note.empty() && note != "?") out << " [" << note << "]";
    std::string reason = str(v, "reason");
    if (!reason.empty() && reason != "?") out << "  — " << reason;
    out << "\n";
    if (str(v, "servable") == "false") {
      std::string why = str(v, "servable_reason");
      out << "    not servable" << (why.empty() || why == "?" ? "" : ": " + why) << "\n";
    }
  }
  const auto& services = arr(s, "services");
  const auto& dp = obj(s, "data_plane");
  out << "\nservices (" << services.size() << ")";
  if (dp.is_object()) {
    if (str(dp, "running") == "true") {
      out << " — data plane: " << count(dp, "workers") << " worker(s) on " << str(dp, "note");
    } else {
      out << " — data plane NOT running";
    }
    if (num(dp, "passive_events_dropped").value_or(0) > 0) {
      out << "; " << count(dp, "passive_events_dropped") << " passive events dropped";
    }
    if (num(dp, "access_log_dropped").value_or(0) > 0) {
      out << "; " << count(dp, "access_log_dropped") << " access log lines dropped";
    }
  }
  out << "\n";
  for (const auto& svc : services) {
    std::string listen;
    for (const auto& l : arr(svc, "listen")) listen += (listen.empty() ? "" : ", ") + (l.is_string() ? std::string(l.get_string()) : "?");
    out << "  " << str(svc, "name") << " (" << str(svc, "mode") << ", " << str(svc, "balance") << ") on " << listen;
    if (str(svc, "state") == "not started") {
      std::string note = str(svc, "note");
      out << " — NOT STARTED" << (note.empty() || note == "?" ? "" : ": " + note);
    }
    out << "\n";
    const auto& health = obj(svc, "health");
    if (health.is_object()) {
      std::string state = str(health, "state");
      out << "    health: " << (state == "down" ? "DOWN" : state == "degraded" ? "DEGRADED" : state);
      std::string root = str(health, "root_cause"), reason = str(health, "reason");
      bool own = root.rfind(str(svc, "name") + ":", 0) == 0;
      if (state == "down" && !root.empty() && root != "?" && !own) {
        out << " — root cause: " << root;
      } else if (!reason.empty() && reason != "?") {
        out << " — " << reason;
      }
      std::string affected;
      for (const auto& a : arr(health, "affected")) affected += (affected.empty() ? "" : ", ") + (a.is_string() ? std::string(a.get_string()) : "?");
      if (!affected.empty()) out << "; affects " << affected;
      out << "\n";
      if (str(svc, "balance") == "single-writer") {
        std::string writer = str(health, "writer");
        out << "    writer: " << (writer == "-" || writer == "?" ? "NONE" : writer);
        std::string why = str(health, "writer_reason");
        if (!why.empty() && why != "?") out << " — " << why;
        out << "\n";
      }
    }
    const auto& c = obj(svc, "counters");
    if (c.is_object()) {
      out << "    " << count(c, "connections") << " connections, " << count(c, "active") << " active, "
          << count(c, "queued") << " queued; " << bytes(c, "bytes_from_clients") << " from clients, "
          << bytes(c, "bytes_to_clients") << " to clients";
      if (num(c, "requests")) out << "; " << count(c, "requests") << " requests (" << responses(c) << ")";
      std::string errors = kinds(c, "errors");
      if (!errors.empty()) out << "; errors: " << errors;
      out << "\n";
    }
    for (const auto& srv : arr(svc, "servers")) {
      const auto& h = obj(srv, "health");
      std::string name = str(srv, "name");
      if (str(h, "role") == "writer") name += " (writer)";
      out << "    " << pad(name, 14) << pad(str(srv, "address"), 26) << pad(str(srv, "state"), 9)
          << str(srv, "reason");
      std::string since = str(h, "since");
      if (!since.empty() && since != "-" && since != "?") out << " (since " << since << ")";
      std::string evidence;
      const auto& ev = obj(obj(h, "last_check"), "evidence");
      if (ev.is_object()) {
        for (const auto& [k, v] : ev.get_object()) {
          if (k == "body_excerpt" || k == "duration_ms") continue;
          evidence += (evidence.empty() ? "" : ", ") + std::string(k) + " " + (v.is_string() ? std::string(v.get_string()) : "?");
        }
      }
      if (!evidence.empty()) out << " [" << evidence << "]";
      out << "\n";
      const auto& ej = obj(h, "ejection");
      if (ej.is_object()) {
        out << "      ejected " << count(ej, "ejections") << " time(s) recently, back-off " << count(ej, "backoff_ms")
            << " ms, re-checked after " << str(ej, "until") << "\n";
      }
      const auto& sc = obj(srv, "counters");
      std::string passive = kinds(srv, "passive");
      if (!sc.is_object() && passive.empty()) continue;
      out << "      ";
      if (sc.is_object()) {
        out << count(sc, "connections") << " connections, " << count(sc, "active") << " active; "
            << bytes(sc, "bytes_to_server") << " to, " << bytes(sc, "bytes_from_server") << " from";
        const auto& ct = obj(sc, "connect_time_us");
        if (num(ct, "p50")) out << "; connect p50 <= " << micros(ct, "p50") << ", p99 <= " << micros(ct, "p99");
        if (num(sc, "requests")) {
          out << "; " << count(sc, "requests") << " requests (" << responses(sc) << ")";
          const auto& rt = obj(sc, "response_time_us");
          if (num(rt, "p50")) out << ", response p50 <= " << micros(rt, "p50") << ", p99 <= " << micros(rt, "p99");
        }
        std::string errors = kinds(sc, "errors");
        if (!errors.empty()) out << "; errors: " << errors;
      }
      if (!passive.empty()) out << (sc.is_object() ? "; " : "") << "passive: " << passive;
      out << "\n";
    }
  }
  const auto& active = arr(s, "active_alerts");
  if (!active.empty()) {
    out << "\nactive alerts (" << active.size() << ")\n";
    for (const auto& a : active) {
      std::string severity = str(a, "severity");
      for (auto& ch : severity) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      out << "  " << pad(severity, 9) << str(a, "summary");
      std::string root = str(a, "root_cause");
      if (!root.empty() && root != "?") out << " — " << root;
      std::string affected;
      for (const auto& x : arr(a, "affected")) affected += (affected.empty() ? "" : ", ") + (x.is_string() ? std::string(x.get_string()) : "?");
      if (!affected.empty()) out << "; affected: " << affected;
      out << " (since " << str(a, "since") << ")\n";
    }
  }
  const auto& sinks = arr(s, "alert_sinks");
  for (const auto& k : sinks) {
    out << "alert sink " << str(k, "name") << ": " << count(k, "sent") << " sent, " << count(k, "failed") << " failed";
    if (num(k, "rate_limited").value_or(0) > 0) out << ", " << count(k, "rate_limited") << " held by the rate limit";
    if (num(k, "dropped").value_or(0) > 0) out << ", " << count(k, "dropped") << " dropped";
    std::string err = str(k, "last_error");
    if (!err.empty() && err != "?") out << " (last error: " << err << ")";
    out << "\n";
  }
  const auto& alerts = arr(s, "alerts");
  if (!alerts.empty()) {
    out << "\nrecent alerts (" << alerts.size() << ")\n";
    for (const auto& a : alerts) out << "  " << str(a, "at") << "  " << str(a, "message") << "\n";
  }
  const auto& config = obj(s, "config");
  const auto& reload = obj(config, "last_reload");
  out << "\nconfig " << str(config, "path") << " sha256 " << str(config, "sha256").substr(0, 12) << " loaded "
      << str(config, "loaded_at") << "\n";
  if (str(reload, "ok") == "false") {
    out << "last reload at " << str(reload, "at") << " FAILED; still running the config above:\n";
    for (const auto& e : arr(reload, "errors")) out << "  " << (e.is_string() ? std::string(e.get_string()) : "?") << "\n";
  }
  return out.str();
}

}  // namespace hafront::control

namespace hafront::control {

std::string render_fence_history(const json::value& reply) {
  const auto& history = arr(reply, "history");
  if (history.empty()) return "no fencing recorded since this daemon started\n";
  std::ostringstream out;
  for (const auto& e : history) {
    int64_t finished = 0;
    if (e.is_object()) {
      if (const auto* f = e.get_object().if_contains("finished_ms"); f && f->is_int64()) finished = f->get_int64();
    }
    std::time_t secs = static_cast<std::time_t>(finished / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    out << when << "." << std::setw(3) << std::setfill('0') << (finished % 1000) << std::setfill(' ') << "Z  "
        << pad(str(e, "target"), 10) << pad(str(e, "result"), 10) << "by " << pad(str(e, "executor"), 10);
    std::string result = str(e, "result");
    if (result == "off") {
      if (str(e, "action") == "reboot") out << "(reboot) ";
      std::string devices;
      for (const auto& d : arr(e, "devices")) devices += (devices.empty() ? "" : ", ") + (d.is_string() ? std::string(d.get_string()) : "?");
      out << "level " << str(e, "level") << " (" << devices << ")";
      int64_t started = 0, delay = 0;
      if (const auto* f = e.get_object().if_contains("started_ms"); f && f->is_int64()) started = f->get_int64();
      if (const auto* f = e.get_object().if_contains("delay_ms"); f && f->is_int64()) delay = f->get_int64();
      if (started > 0 && finished >= started) out << " in " << (finished - started) << " ms";
      if (delay > 0) out << " after a " << delay << " ms delay";
      std::string note = str(e, "reason");
      if (!note.empty() && note != "?") out << " — " << note;
    } else if (result == "failed") {
      out << "after " << str(e, "rounds") << " attempt(s): " << str(e, "reason");
    }
    out << "\n";
  }
  return out.str();
}

}  // namespace hafront::control
