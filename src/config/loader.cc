// The config loader: text -> YAML tree -> typed model -> cross-reference checks.
// Reading is section by section with the strict readers of yaml_reader.h; checks that
// span sections (references, duplicates across services, cycles) run once the whole
// model is read, so each error is reported once at the place that causes it.
#include <openssl/evp.h>
#include <unistd.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <functional>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>

#include "config/config.h"
#include "config/units.h"
#include "config/yaml_reader.h"

namespace hafront::config {
namespace {

using detail::Context;
using detail::MapView;
using detail::Place;
using detail::Value;

constexpr Duration kMaxDuration{10LL * 365 * 86'400'000};

// Fence agent parameters that hold secrets: never accepted inline.
constexpr std::string_view kInlineSecretParams[] = {"password", "passwd", "community",
                                                    "snmp_priv_passwd", "snmp_auth_pass"};
// Fence agent parameters that hafront sets itself.
constexpr std::string_view kReservedParams[] = {"action", "plug", "port", "nodename"};

std::string hex_sha256(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0xf];
  }
  return out;
}

// Text checks before YAML sees the bytes: NUL bytes and invalid UTF-8 mean the file is
// not a config file at all, and yaml-cpp's messages for them are not helpful.
bool check_text(Context& ctx, std::string_view text) {
  int line = 0, col = 0;
  for (size_t i = 0; i < text.size();) {
    auto c = static_cast<unsigned char>(text[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool valid = len != 0 && i + len <= text.size();
    for (size_t k = 1; valid && k < len; ++k)
      valid = (static_cast<unsigned char>(text[i + k]) & 0xc0) == 0x80;
    YAML::Mark m;
    m.line = line;
    m.column = col;
    if (!valid) {
      ctx.error(m, "the file is not UTF-8 text (invalid byte sequence); is it a binary file?");
      return false;
    }
    if (c == 0) {
      ctx.error(m, "the file contains a NUL byte; is it a binary file?");
      return false;
    }
    if (c == '\n') {
      ++line;
      col = 0;
    } else {
      ++col;
    }
    i += len;
  }
  return true;
}

// yaml-cpp's messages for tab indentation ("illegal map value") do not say what is wrong:
// when the line of a syntax error is indented with a tab, say so.
std::string tab_hint(std::string_view text, const YAML::Mark& mark) {
  if (mark.line < 0) return "";
  size_t start = 0;
  for (int l = 0; l < mark.line; ++l) {
    start = text.find('\n', start);
    if (start == std::string_view::npos) return "";
    ++start;
  }
  size_t end = text.find_first_not_of(" \t", start);
  std::string_view indent = text.substr(start, (end == std::string_view::npos ? text.size() : end) - start);
  if (indent.find('\t') == std::string_view::npos) return "";
  return " (line " + std::to_string(mark.line + 1) + " is indented with a tab; YAML indents with spaces only)";
}

class Loader {
 public:
  Loader(Context& ctx, const LoadOptions& options) : ctx_(ctx), options_(options) {}

  void read(const YAML::Node& root, Config& c);

 private:
  void read_cluster(const Value& v, Cluster& c);
  void read_node(const Value& v, Node& n);
  void read_fence_devices(const Value& v, std::map<std::string, FenceDevice>& out);
  void read_vips(const Value& v, std::vector<Vip>& out);
  void read_checks(const Value& v, std::vector<Check>& out);
  void read_http_check(const Value& v, bool tls, HttpCheck& h);
  void read_mysql_check(const Value& v, MysqlCheck& m);
  void read_exec_check(const Value& v, ExecCheck& e);
  void read_services(const Value& v, Config& c);
  void read_server(const Value& v, Server& s);
  void read_route(const Value& v, Route& r);
  void check_routes(const Config& c);
  void read_passive(const Value& v, PassiveOptions& p);
  void read_alerts(const Value& v, AlertOptions& a);
  std::optional<SecretRef> read_secret(const Value& v);
  std::optional<std::string> read_path(const Value& v);

  void check_references(Config& c);
  void check_listen_sockets(const Config& c);
  void check_dependency_cycles(const Config& c);

  Context& ctx_;
  const LoadOptions& options_;

  // Places of things that later checks point back at.
  std::map<std::string, Place> vip_places_;
  std::map<std::string, Place> service_places_;
  std::map<std::string, Place> check_places_;
  std::map<std::string, std::vector<Place>> listen_places_;      // service -> per listen entry
  std::map<std::string, Place> service_check_places_;            // service -> its check: key
  std::map<std::string, std::vector<Place>> depends_places_;     // service -> per entry
  std::map<std::string, std::vector<Place>> route_places_;       // service -> per route
  std::map<std::string, Place> routes_key_places_;               // service -> its routes: key
  std::set<std::string> without_listen_;                         // services with no listen: key
  std::set<std::string> without_servers_;                        // services with no servers: key
  std::map<std::string, std::vector<Place>> prefer_places_;      // vip -> per entry
  std::map<std::string, std::vector<std::pair<std::string, Place>>> listen_vip_refs_;
  std::vector<std::pair<std::string, Place>> fence_refs_;        // device name, place
  std::vector<Place> node_places_;
  std::set<std::string> broken_vips_;
  Place nodes_place_;
  Place two_node_place_;
};

void Loader::read(const YAML::Node& root, Config& c) {
  Value top{root, {"", root.Mark()}};
  MapView m(ctx_, top,
            {"cluster", "fence_devices", "vips", "checks", "services", "admin", "logging", "proxy", "alerts"},
            {"cluster"});
  if (!m.valid()) return;
  if (auto v = m.find("cluster")) read_cluster(*v, c.cluster);
  if (auto v = m.find("fence_devices")) read_fence_devices(*v, c.fence_devices);
  if (auto v = m.find("vips")) read_vips(*v, c.vips);
  if (auto v = m.find("checks")) read_checks(*v, c.checks);
  if (auto v = m.find("services")) read_services(*v, c);
  if (auto v = m.find("alerts")) read_alerts(*v, c.alerts);
  if (auto v = m.find("admin")) {
    MapView a(ctx_, *v, {"socket"});
    if (auto s = a.find("socket")) {
      if (auto p = read_path(*s)) {
        if (p->size() >= 108) {
          ctx_.error(s->place.mark, s->place.path + ": a unix socket path must be shorter than 108 bytes");
        } else {
          c.admin.socket = *p;
        }
      }
    }
  }
  if (auto v = m.find("logging")) {
    MapView l(ctx_, *v, {"level"});
    l.get("level", c.logging.level,
          {{"debug", LogLevel::Debug}, {"info", LogLevel::Info}, {"warning", LogLevel::Warning},
           {"error", LogLevel::Error}});
  }
  if (auto v = m.find("proxy")) {
    MapView p(ctx_, *v, {"workers", "buffer_size", "max_header_size", "max_connections", "io_backend", "access_log"});
    if (auto w = p.find("workers")) {
      if (!(w->node.IsScalar() && w->node.Scalar() == "auto")) {
        if (auto n = detail::read_uint(ctx_, *w, 1, 256)) c.proxy.workers = static_cast<uint32_t>(*n);
      }
    }
    p.get_size("buffer_size", c.proxy.buffer_size, 1024, 1 << 20);
    p.get_size("max_header_size", c.proxy.max_header_size, 1024, 1 << 20);
    p.get("max_connections", c.proxy.max_connections, 1, 10'000'000);
    p.get("io_backend", c.proxy.io_backend,
          {{"auto", IoBackendChoice::Auto}, {"io_uring", IoBackendChoice::IoUring}, {"epoll", IoBackendChoice::Epoll}});
    if (auto a = p.find("access_log")) {
      auto text = detail::read_string(ctx_, *a);
      if (text && (*text == "off" || *text == "stderr")) {
        c.proxy.access_log = *text == "off" ? "" : "stderr";
      } else if (text) {
        if (auto path = read_path(*a)) c.proxy.access_log = *path;
      }
    }
  }
  // Once the visit budget is spent (reported where it ran out), the model is incomplete:
  // cross-checks would only flood the output with errors about what was never read.
  if (!ctx_.spend(root.Mark())) return;
  check_references(c);
  check_routes(c);
  check_listen_sockets(c);
  check_dependency_cycles(c);
}

// A path to a file: absolute, or relative to the config file's folder.
std::optional<std::string> Loader::read_path(const Value& v) {
  auto s = detail::read_string(ctx_, v);
  if (!s) return std::nullopt;
  if (s->empty()) {
    ctx_.error(v.place.mark, v.place.path + ": expected a file path, got an empty text");
    return std::nullopt;
  }
  std::filesystem::path p(*s);
  if (p.is_relative() && !options_.base_dir.empty()) p = std::filesystem::path(options_.base_dir) / p;
  return p.lexically_normal().string();
}

std::optional<SecretRef> Loader::read_secret(const Value& v) {
  auto path = read_path(v);
  if (!path) return std::nullopt;
  if (options_.check_secret_files) {
    struct stat st {};
    if (::stat(path->c_str(), &st) != 0) {
      ctx_.error(v.place.mark, v.place.path + ": cannot use secret file '" + *path + "': " +
                                   std::strerror(errno));
      return std::nullopt;
    }
    if (!S_ISREG(st.st_mode)) {
      ctx_.error(v.place.mark, v.place.path + ": secret file '" + *path + "' is not a regular file");
      return std::nullopt;
    }
    if (::access(path->c_str(), R_OK) != 0) {
      ctx_.error(v.place.mark, v.place.path + ": cannot read secret file '" + *path + "': " +
                                   std::strerror(errno));
      return std::nullopt;
    }
  }
  return SecretRef{*path};
}

void Loader::read_cluster(const Value& v, Cluster& c) {
  MapView m(ctx_, v, {"name", "mode", "nodes", "quorum", "timings", "fencing"}, {"name"});
  if (!m.valid()) return;
  if (auto n = m.find("name")) {
    if (auto s = detail::read_name(ctx_, *n)) c.name = *s;
  }
  m.get("mode", c.mode, {{"standalone", ClusterMode::Standalone}, {"corosync", ClusterMode::Corosync}});
  nodes_place_ = m.place();
  if (auto n = m.find("nodes")) {
    nodes_place_ = n->place;
    detail::for_each_item(ctx_, *n, [&](const Value& item) {
      Node node;
      node_places_.push_back(item.place);
      read_node(item, node);
      c.nodes.push_back(std::move(node));
    });
  }
  if (auto q = m.find("quorum")) {
    MapView qm(ctx_, *q, {"two_node", "wait_for_all", "expected_votes"});
    qm.get("two_node", c.quorum.two_node);
    c.quorum.wait_for_all = c.quorum.two_node;
    qm.get("wait_for_all", c.quorum.wait_for_all);
    qm.get("expected_votes", c.quorum.expected_votes, 1, 64);
    if (auto t = qm.find("two_node")) two_node_place_ = t->place;
  }
  if (auto t = m.find("timings")) {
    MapView tm(ctx_, *t, {"token", "heartbeat_interval", "liveness_timeout", "lease", "lease_margin"});
    tm.get("token", c.timings.token, Duration{100}, Duration{60'000});
    tm.get("heartbeat_interval", c.timings.heartbeat_interval, Duration{10}, Duration{10'000});
    tm.get("liveness_timeout", c.timings.liveness_timeout, Duration{20}, Duration{600'000});
    tm.get("lease", c.timings.lease, Duration{100}, Duration{60'000});
    tm.get("lease_margin", c.timings.lease_margin, Duration{10}, Duration{60'000});
    // A heartbeat is acknowledged by the next one at worst: a lease shorter than three
    // intervals would lapse between renewals on a healthy cluster. Unset, the lease and
    // its margin follow the heartbeat.
    if (auto l = tm.find("lease")) {
      if (c.timings.lease < 3 * c.timings.heartbeat_interval) {
        ctx_.error(l->place.mark, l->place.path + ": the lease (" + format_duration(c.timings.lease) +
                                      ") must be at least three heartbeat intervals (" +
                                      format_duration(3 * c.timings.heartbeat_interval) + ")");
      }
    } else {
      c.timings.lease = std::max(c.timings.lease, 3 * c.timings.heartbeat_interval);
    }
    if (auto mg = tm.find("lease_margin")) {
      if (c.timings.lease_margin * 50 < c.timings.lease) {
        ctx_.error(mg->place.mark, mg->place.path + ": must be at least 2% of the lease (" +
                                       format_duration(c.timings.lease / 50) + ") to cover clock drift");
      }
    } else {
      c.timings.lease_margin = std::max(c.timings.lease_margin, c.timings.lease / 50);
    }
    if (c.timings.liveness_timeout < 2 * c.timings.heartbeat_interval) {
      if (auto l = tm.find("liveness_timeout")) {
        ctx_.error(l->place.mark, l->place.path + ": must be at least twice heartbeat_interval (" +
                                      format_duration(2 * c.timings.heartbeat_interval) + ")");
      } else {
        // Only a long heartbeat_interval can push the default liveness_timeout too short.
        auto where = tm.find("heartbeat_interval").value_or(Value{{}, tm.place()}).place;
        ctx_.error(where.mark, where.path + ": needs a liveness_timeout of at least " +
                                   format_duration(2 * c.timings.heartbeat_interval) +
                                   " (twice the interval); the default is " +
                                   format_duration(c.timings.liveness_timeout) + ", set it");
      }
    }
  }

  if (auto f = m.find("fencing")) {
    MapView fm(ctx_, *f, {"action", "timeout", "random_delay", "priority_delay", "monitor_interval", "agent_dirs"});
    fm.get("action", c.fencing.action, {{"off", FenceAction::Off}, {"reboot", FenceAction::Reboot}});
    fm.get("timeout", c.fencing.timeout, Duration{1000}, Duration{3'600'000});
    fm.get("random_delay", c.fencing.random_delay, Duration{0}, Duration{600'000});
    fm.get("priority_delay", c.fencing.priority_delay, Duration{0}, Duration{600'000});
    fm.get("monitor_interval", c.fencing.monitor_interval, Duration{0}, Duration{86'400'000});
    if (auto d = fm.find("agent_dirs")) {
      c.fencing.agent_dirs.clear();
      detail::for_each_item(ctx_, *d, [&](const Value& item) {
        auto s = detail::read_string(ctx_, item);
        if (!s) return;
        if (s->empty() || (*s)[0] != '/') {
          ctx_.error(item.place.mark, item.place.path + ": expected an absolute folder, got '" + *s + "'");
          return;
        }
        c.fencing.agent_dirs.push_back(*s);
      });
      if (c.fencing.agent_dirs.empty() && d->node.IsSequence()) {
        ctx_.error(d->place.mark, d->place.path + ": list at least one folder (Debian's agents are in /usr/sbin)");
      }
    }
  }

  if (c.mode == ClusterMode::Standalone && c.nodes.size() > 1) {
    ctx_.error(nodes_place_.mark, "cluster.nodes: standalone mode runs one node; list at most one "
                                  "(or set mode: corosync)");
  }
  if (c.mode == ClusterMode::Corosync && c.nodes.size() < 2) {
    ctx_.error(nodes_place_.mark, "cluster.nodes: corosync mode needs at least 2 nodes, got " +
                                      std::to_string(c.nodes.size()));
  }
  if (c.nodes.size() > 64) {
    ctx_.error(nodes_place_.mark, "cluster.nodes: at most 64 nodes are supported");
  }
  if (c.quorum.two_node && c.nodes.size() != 2) {
    ctx_.error(two_node_place_.mark, "cluster.quorum.two_node: needs exactly 2 nodes, the cluster has " +
                                         std::to_string(c.nodes.size()));
  }
  if (c.mode == ClusterMode::Corosync && c.nodes.size() == 2 && !c.quorum.two_node) {
    ctx_.warning(nodes_place_.mark, "cluster.nodes: a 2-node cluster without quorum.two_node "
                                    "loses quorum (and every VIP) when either node fails");
  }
}

void Loader::read_node(const Value& v, Node& n) {
  MapView m(ctx_, v, {"name", "id", "address", "fencing", "fence_delay"}, {"name", "id", "address"});
  m.get("fence_delay", n.fence_delay, Duration{0}, Duration{600'000});
  if (!m.valid()) return;
  if (auto x = m.find("name")) {
    if (auto s = detail::read_name(ctx_, *x)) n.name = *s;
  }
  if (auto x = m.find("id")) {
    if (auto id = detail::read_uint(ctx_, *x, 1, 0x7fffffff)) n.id = static_cast<uint32_t>(*id);
  }
  if (auto x = m.find("address")) {
    if (auto s = detail::read_string(ctx_, *x)) {
      if (auto a = parse_address(*s)) {
        n.address = *a;
        if (a->is_unspecified()) {
          ctx_.error(x->place.mark, x->place.path + ": a node cannot be at the unspecified address");
        }
      } else {
        ctx_.error(x->place.mark, x->place.path + ": expected an IPv4 or IPv6 address, got '" + *s + "'");
      }
    }
  }
  if (auto x = m.find("fencing")) {
    detail::for_each_item(ctx_, *x, [&](const Value& level) {
      std::vector<FenceRef> refs;
      detail::for_each_item(ctx_, level, [&](const Value& dev) {
        auto s = detail::read_string(ctx_, dev);
        if (!s) return;
        FenceRef ref;
        size_t colon = s->find(':');
        ref.device = s->substr(0, colon);
        if (colon != std::string::npos) ref.plug = s->substr(colon + 1);
        if (!is_valid_name(ref.device) || (ref.plug && ref.plug->empty())) {
          ctx_.error(dev.place.mark, dev.place.path + ": expected DEVICE or DEVICE:PLUG, got '" + *s + "'");
          return;
        }
        fence_refs_.emplace_back(ref.device, dev.place);
        refs.push_back(std::move(ref));
      });
      if (level.node.IsSequence() && level.node.size() == 0) {
        ctx_.error(level.place.mark, level.place.path + ": a fencing level needs at least one device");
      }
      n.fencing.push_back(std::move(refs));
    });
  }
}

void Loader::read_fence_devices(const Value& v, std::map<std::string, FenceDevice>& out) {
  detail::for_each_named(ctx_, v, "fence device", [&](const std::string& name, const Value& dv) {
    FenceDevice d;
    d.name = name;
    auto entries = dv.node.IsMap();
    if (!entries) {
      ctx_.error(dv.place.mark, dv.place.path + ": expected a mapping (agent: ..., parameters), got " +
                                    detail::describe(dv.node));
      return;
    }
    // Free-form agent parameters: walked by hand, each key checked for its own rules.
    std::set<std::string> seen;
    bool has_agent = false;
    for (auto it = dv.node.begin(); it != dv.node.end(); ++it) {
      if (!ctx_.spend(dv.place.mark)) return;
      const YAML::Node key = it->first;  // a copy: it-> is a temporary proxy
      YAML::Mark km = key.Mark();
      if (!key.IsScalar()) {
        ctx_.error(km, dv.place.path + ": keys must be plain text");
        continue;
      }
      std::string k = key.Scalar();
      // An empty value carries the mark of the next token: point at the key instead.
      Value val{it->second, {dv.place.path + "." + k,
                             it->second.Mark().line >= 0 && !it->second.IsNull() ? it->second.Mark() : km}};
      if (!seen.insert(k).second) {
        ctx_.error(km, dv.place.path + ": duplicate key '" + k + "'");
        continue;
      }
      if (k == "agent") {
        if (auto s = detail::read_string(ctx_, val)) {
          bool ok = s->rfind("fence_", 0) == 0 && s->size() > 6 &&
                    std::all_of(s->begin(), s->end(), [](char ch) {
                      return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
                    });
          if (ok) {
            d.agent = *s;
            has_agent = true;
          } else {
            ctx_.error(val.place.mark, val.place.path + ": expected a fence agent name like "
                                                        "fence_ipmilan, got '" + *s + "'");
          }
        }
        continue;
      }
      if (k == "timeout") {
        if (auto t = detail::read_duration(ctx_, val, Duration{1000}, Duration{600'000})) d.timeout = *t;
        continue;
      }
      bool valid_param = !k.empty() && std::all_of(k.begin(), k.end(), [](char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
      });
      if (!valid_param) {
        ctx_.error(km, dv.place.path + ": '" + k + "' is not a fence agent parameter name (a-z 0-9 _)");
        continue;
      }
      if (std::find(std::begin(kReservedParams), std::end(kReservedParams), k) != std::end(kReservedParams)) {
        ctx_.error(km, dv.place.path + ": '" + k + "' is set by hafront (from the fencing level and "
                                                  "the operation); remove it here");
        continue;
      }
      if (std::find(std::begin(kInlineSecretParams), std::end(kInlineSecretParams), k) !=
          std::end(kInlineSecretParams)) {
        ctx_.error(km, dv.place.path + ": secrets are never written inline; put it in a file and "
                                       "write '" + k + "_file: PATH'");
        continue;
      }
      // PARAM_file holds a secret parameter's value; other *_file parameters of the agents
      // (identity_file, debug_file) are plain paths passed on as they are.
      if (k.size() > 5 && k.compare(k.size() - 5, 5, "_file") == 0 &&
          std::find(std::begin(kInlineSecretParams), std::end(kInlineSecretParams), k.substr(0, k.size() - 5)) !=
              std::end(kInlineSecretParams)) {
        if (auto s = read_secret(val)) d.secrets[k.substr(0, k.size() - 5)] = *s;
        continue;
      }
      if (!val.node.IsScalar()) {
        ctx_.error(val.place.mark, val.place.path + ": agent parameters are single values, got " +
                                       detail::describe(val.node));
        continue;
      }
      const std::string& text = val.node.Scalar();
      if (text.find_first_of("\r\n") != std::string::npos) {
        ctx_.error(val.place.mark, val.place.path + ": agent parameters cannot contain line breaks");
        continue;
      }
      // Flags: true is passed as 1, false leaves the parameter out.
      if (text == "true") {
        d.params[k] = "1";
      } else if (text != "false") {
        d.params[k] = text;
      }
    }
    if (!has_agent && seen.count("agent") == 0) {
      ctx_.error(dv.place.mark, dv.place.path + ": missing required key 'agent'");
    }
    out.emplace(name, std::move(d));
  });
}

void Loader::read_vips(const Value& v, std::vector<Vip>& out) {
  detail::for_each_named(ctx_, v, "VIP", [&](const std::string& name, const Value& vv) {
    MapView m(ctx_, vv, {"address", "interface", "prefer", "failback", "driver", "garp", "probe", "health_gate"},
              {"address", "interface"});
    // Until its address is read, a VIP is "broken": its placeholder address 0.0.0.0 must
    // not be compared with other VIPs and listeners, nor its name be reported as unknown.
    broken_vips_.insert(name);
    if (!m.valid()) return;
    Vip vip;
    vip.name = name;
    vip_places_[name] = vv.place;
    if (auto a = m.find("address")) {
      if (auto s = detail::read_string(ctx_, *a)) {
        if (auto cidr = parse_cidr(*s)) {
          vip.address = *cidr;
          if (cidr->address.is_unspecified()) {
            ctx_.error(a->place.mark, a->place.path + ": a VIP cannot be the unspecified address");
          } else {
            broken_vips_.erase(name);
          }
        } else {
          ctx_.error(a->place.mark, a->place.path + ": expected ADDRESS/PREFIX like 192.0.2.100/24 "
                                                    "or 2001:db8::100/64, got '" + *s + "'");
        }
      }
    }
    if (auto i = m.find("interface")) {
      if (auto s = detail::read_string(ctx_, *i)) {
        bool ok = !s->empty() && s->size() < 16 && *s != "." && *s != ".." &&
                  s->find_first_of("/: \t") == std::string::npos;
        if (ok) {
          vip.interface = *s;
        } else {
          ctx_.error(i->place.mark, i->place.path + ": '" + *s + "' is not a valid interface name");
        }
      }
    }
    if (auto p = m.find("prefer")) {
      detail::for_each_item(ctx_, *p, [&](const Value& item) {
        if (auto s = detail::read_string(ctx_, item)) {
          vip.prefer.push_back(*s);
          prefer_places_[name].push_back(item.place);
        }
      });
    }
    m.get("failback", vip.failback);
    m.get("probe", vip.probe, Duration{0}, Duration{2000});
    m.get("driver", vip.driver,
          {{"auto", VipDriver::Auto}, {"lease", VipDriver::Lease}, {"address", VipDriver::Address}});
    m.get("health_gate", vip.health_gate, {{"all", HealthGate::All}, {"any", HealthGate::Any}, {"none", HealthGate::None}});
    if (auto g = m.find("garp")) {
      MapView gm(ctx_, *g, {"count", "interval", "refresh"});
      gm.get("count", vip.garp.count, 0, 100);
      gm.get("interval", vip.garp.interval, Duration{0}, Duration{10'000});
      gm.get("refresh", vip.garp.refresh, Duration{0}, Duration{86'400'000});
      if (vip.garp.refresh.count() != 0 && vip.garp.refresh < Duration{1000}) {
        auto r = gm.find("refresh");
        ctx_.error(r->place.mark, r->place.path + ": a refresh more often than every 1s floods the "
                                                  "network; use 0 (off) or at least 1s");
      }
    }
    out.push_back(std::move(vip));
  });
}

void Loader::read_checks(const Value& v, std::vector<Check>& out) {
  detail::for_each_named(ctx_, v, "check", [&](const std::string& name, const Value& cv) {
    MapView m(ctx_, cv,
              {"tcp", "http", "https", "mysql", "exec", "port", "interval", "fast_interval",
               "timeout", "rise", "fall", "jitter"});
    if (!m.valid()) return;
    Check c;
    c.name = name;
    check_places_[name] = cv.place;
    int kinds = 0;
    if (auto t = m.find("tcp")) {
      ++kinds;
      c.kind = CheckKind::Tcp;
      if (!t->node.IsNull()) MapView(ctx_, *t, {});
    }
    if (auto h = m.find("http")) {
      ++kinds;
      c.kind = CheckKind::Http;
      read_http_check(*h, false, c.http);
    }
    if (auto h = m.find("https")) {
      ++kinds;
      c.kind = CheckKind::Http;
      read_http_check(*h, true, c.http);
    }
    if (auto q = m.find("mysql")) {
      ++kinds;
      c.kind = CheckKind::Mysql;
      read_mysql_check(*q, c.mysql);
    }
    if (auto e = m.find("exec")) {
      ++kinds;
      c.kind = CheckKind::Exec;
      read_exec_check(*e, c.exec);
    }
    if (kinds != 1) {
      ctx_.error(cv.place.mark, cv.place.path + ": a check has exactly one of tcp, http, https, mysql, "
                                                "exec; found " + std::to_string(kinds));
    }
    if (auto p = m.find("port")) {
      if (auto n = detail::read_uint(ctx_, *p, 1, 65535)) c.port = static_cast<uint16_t>(*n);
    }
    m.get("interval", c.interval, Duration{10}, Duration{3'600'000});
    c.fast_interval = std::min(c.fast_interval, c.interval);
    m.get("fast_interval", c.fast_interval, Duration{10}, Duration{3'600'000});
    c.timeout = std::min(c.timeout, c.interval);
    m.get("timeout", c.timeout, Duration{1}, Duration{600'000});
    m.get("rise", c.rise, 1, 100);
    m.get("fall", c.fall, 1, 100);
    if (auto j = m.find("jitter")) {
      std::optional<uint64_t> pct;
      if (j->node.IsScalar()) {
        const std::string& s = j->node.Scalar();
        if (s.size() >= 2 && s.back() == '%' &&
            std::all_of(s.begin(), s.end() - 1, [](char ch) { return ch >= '0' && ch <= '9'; }) &&
            s.size() <= 4) {
          pct = std::stoull(s.substr(0, s.size() - 1));
        }
      }
      if (pct && *pct <= 50) {
        c.jitter_percent = static_cast<uint32_t>(*pct);
      } else {
        ctx_.error(j->place.mark, j->place.path + ": expected a percentage from 0% to 50%, got " +
                                      detail::describe(j->node));
      }
    }
    if (c.timeout > c.interval) {
      auto where = m.find("timeout").value_or(Value{{}, cv.place}).place;
      ctx_.error(where.mark, cv.place.path + ".timeout: " + format_duration(c.timeout) +
                                 " is longer than the interval (" + format_duration(c.interval) +
                                 "); checks would overlap");
    }
    out.push_back(std::move(c));
  });
}

namespace {
// "1.2.3.256": digits and dots with at least one dot, meant as an IPv4 address.
bool looks_like_ipv4(std::string_view s) {
  return s.find('.') != std::string_view::npos &&
         std::all_of(s.begin(), s.end(), [](char ch) { return (ch >= '0' && ch <= '9') || ch == '.'; });
}
// Why a text that is not an endpoint fails, where that is not obvious from the text.
std::string endpoint_hint(std::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return "; the port is missing";
  std::string_view host = text.substr(0, colon), port = text.substr(colon + 1);
  if (!text.empty() && text.front() != '[' && host.find(':') != std::string_view::npos)
    return "; write IPv6 addresses in brackets, like [2001:db8::1]:80";
  if (!parse_port(port)) return "; the port must be 1..65535";
  if (looks_like_ipv4(host) && !parse_address(host)) return "; '" + std::string(host) + "' is not a valid IPv4 address";
  return "";
}
bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(ch) != std::string_view::npos;
  });
}
// "50%": a whole percentage from 0 to `max`; reported and nullopt otherwise.
std::optional<uint32_t> read_percent(Context& ctx, const Value& v, uint32_t max) {
  if (v.node.IsScalar()) {
    const std::string& s = v.node.Scalar();
    if (s.size() >= 2 && s.size() <= 4 && s.back() == '%' &&
        std::all_of(s.begin(), s.end() - 1, [](char ch) { return ch >= '0' && ch <= '9'; })) {
      auto n = static_cast<uint32_t>(std::stoul(s.substr(0, s.size() - 1)));
      if (n <= max) return n;
    }
  }
  ctx.error(v.place.mark, v.place.path + ": expected a percentage from 0% to " + std::to_string(max) + "%, got " +
                              detail::describe(v.node));
  return std::nullopt;
}
// http://HOST[:PORT][/PATH]: fills host, port and target; an error text otherwise.
std::string parse_webhook_url(const std::string& url, WebhookSink& w) {
  constexpr std::string_view kScheme = "http://";
  if (url.rfind("https://", 0) == 0) return "https is not supported; send to an http:// relay on this host";
  if (url.rfind(kScheme, 0) != 0) return "expected a URL like http://127.0.0.1:9000/hook";
  std::string rest = url.substr(kScheme.size());
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  w.target = slash == std::string::npos ? "/" : rest.substr(slash);
  if (!std::all_of(w.target.begin(), w.target.end(), [](char ch) { return ch > 0x20 && ch != 0x7f; }))
    return "the path cannot contain spaces or control characters";
  if (authority.find('@') != std::string::npos) return "credentials in the URL are not supported";
  std::string host = authority, port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string::npos) return "an IPv6 address needs its closing ']'";
    host = authority.substr(1, close - 1);
    if (!parse_address(host) || !parse_address(host)->is_v6()) return "'" + host + "' is not an IPv6 address";
    std::string after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return "expected ':PORT' after the address";
      port = after.substr(1);
    }
  } else if (size_t colon = authority.rfind(':'); colon != std::string::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (host.find(':') != std::string::npos) return "write IPv6 addresses in brackets, like http://[::1]:9000/";
  }
  bool host_ok = !host.empty() && host.size() <= 253 && std::all_of(host.begin(), host.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '-' || ch == ':';
  });
  if (!host_ok) return "expected a host name or address after http://";
  if (looks_like_ipv4(host) && !parse_address(host)) return "'" + host + "' is not a valid IPv4 address";
  w.host = host;
  w.port = 80;
  if (!port.empty() || authority.back() == ':') {
    auto p = parse_port(port);
    if (!p) return "the port must be 1..65535";
    w.port = *p;
  }
  return "";
}
bool is_field_value(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char ch) {
    auto u = static_cast<unsigned char>(ch);
    return u == '\t' || (u >= 0x20 && u != 0x7f);
  });
}
}  // namespace

void Loader::read_http_check(const Value& v, bool tls, HttpCheck& h) {
  h.tls = tls;
  if (v.node.IsNull()) return;  // `http:` alone: GET / expecting 200
  std::initializer_list<std::string_view> keys_http = {
      "method", "path", "host", "headers", "expect_status", "expect_body", "expect_body_regex", "expect_json"};
  std::initializer_list<std::string_view> keys_https = {
      "method", "path", "host", "headers", "expect_status", "expect_body", "expect_body_regex",
      "expect_json", "verify", "ca_file", "sni"};
  MapView m(ctx_, v, tls ? keys_https : keys_http);
  if (!m.valid()) return;
  if (auto x = m.find("method")) {
    if (auto s = detail::read_string(ctx_, *x)) {
      if (is_token(*s) && std::all_of(s->begin(), s->end(), [](char ch) { return ch >= 'A' && ch <= 'Z'; })) {
        h.method = *s;
      } else {
        ctx_.error(x->place.mark, x->place.path + ": expected an HTTP method in capitals like GET or HEAD");
      }
    }
  }
  if (auto x = m.find("path")) {
    if (auto s = detail::read_string(ctx_, *x)) {
      bool ok = !s->empty() && s->front() == '/' &&
                std::all_of(s->begin(), s->end(), [](char ch) { return ch > 0x20 && ch != 0x7f; });
      if (ok) {
        h.path = *s;
      } else {
        ctx_.error(x->place.mark, x->place.path + ": expected a path starting with '/' without spaces");
      }
    }
  }
  if (auto x = m.find("host")) {
    if (auto s = detail::read_string(ctx_, *x)) {
      if (!s->empty() && is_field_value(*s) && s->find(' ') == std::string::npos) {
        h.host = *s;
      } else {
        ctx_.error(x->place.mark, x->place.path + ": not a valid Host header value");
      }
    }
  }
  if (auto x = m.find("headers")) {
    if (!x->node.IsMap()) {
      ctx_.error(x->place.mark, x->place.path + ": expected a mapping of header names to values");
    } else {
      for (auto it = x->node.begin(); it != x->node.end(); ++it) {
        if (!ctx_.spend(x->place.mark)) break;
        std::string name = it->first.IsScalar() ? it->first.Scalar() : "";
        if (!is_token(name)) {
          ctx_.error(it->first.Mark(), x->place.path + ": '" + name + "' is not a valid header name");
          continue;
        }
        // Header names are case-insensitive: Accept and accept are the same header.
        auto same = std::find_if(h.headers.begin(), h.headers.end(), [&](const auto& kv) {
          return std::equal(kv.first.begin(), kv.first.end(), name.begin(), name.end(),
                            [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) ==
                                                        std::tolower(static_cast<unsigned char>(b)); });
        });
        if (same != h.headers.end()) {
          ctx_.error(it->first.Mark(), x->place.path + ": duplicate header '" + name + "'");
          continue;
        }
        Value hv{it->second, {x->place.path + "." + name,
                              it->second.IsNull() ? it->first.Mark() : it->second.Mark()}};
        auto val = detail::read_string(ctx_, hv);
        if (!val) continue;
        if (!is_field_value(*val)) {
          ctx_.error(hv.place.mark, hv.place.path + ": header values cannot contain control characters");
          continue;
        }
        h.headers[name] = *val;
      }
    }
  }
  if (auto x = m.find("expect_status")) {
    h.expect_status.clear();
    auto add = [&](const Value& item) {
      if (auto n = detail::read_uint(ctx_, item, 100, 599)) h.expect_status.push_back(static_cast<uint16_t>(*n));
    };
    if (x->node.IsSequence()) {
      detail::for_each_item(ctx_, *x, add);
      if (x->node.size() == 0) ctx_.error(x->place.mark, x->place.path + ": list at least one status");
    } else {
      add(*x);
    }
  }
  m.get("expect_body", h.expect_body);
  if (auto x = m.find("expect_body_regex")) {
    if (auto s = detail::read_string(ctx_, *x)) {
      try {
        std::regex re(*s, std::regex::ECMAScript);
        h.expect_body_regex = *s;
      } catch (const std::regex_error& e) {
        ctx_.error(x->place.mark, x->place.path + ": not a valid regular expression: " + e.what());
      }
    }
  }
  if (auto x = m.find("expect_json")) {
    MapView jm(ctx_, *x, {"field", "equals"}, {"field", "equals"});
    JsonExpect je;
    if (auto f = jm.find("field")) {
      if (auto s = detail::read_string(ctx_, *f)) {
        if (!s->empty() && s->front() == '/') {
          je.field = *s;
        } else {
          ctx_.error(f->place.mark, f->place.path + ": expected a JSON pointer like /version/status");
        }
      }
    }
    jm.get("equals", je.equals);
    if (jm.valid()) h.expect_json = je;
  }
  m.get("verify", h.tls_options.verify);
  if (auto x = m.find("ca_file")) {
    if (auto p = read_path(*x)) {
      if (options_.check_secret_files && ::access(p->c_str(), R_OK) != 0) {
        ctx_.error(x->place.mark, x->place.path + ": cannot read CA file '" + *p + "': " + std::strerror(errno));
      } else {
        h.tls_options.ca_file = *p;
      }
    }
  }
  m.get("sni", h.tls_options.sni);
}

void Loader::read_mysql_check(const Value& v, MysqlCheck& q) {
  MapView m(ctx_, v, {"user", "password_file", "require"}, {"user"});
  if (!m.valid()) return;
  m.get("user", q.user);
  if (auto p = m.find("password_file")) q.password = read_secret(*p);
  if (auto r = m.find("require")) {
    MapView rm(ctx_, *r, {"wsrep_local_state", "wsrep_cluster_status", "wsrep_ready", "wsrep_desync", "read_only"});
    if (auto x = rm.find("wsrep_local_state")) {
      if (auto n = detail::read_uint(ctx_, *x, 1, 6)) q.require.wsrep_local_state = static_cast<int>(*n);
    }
    if (auto x = rm.find("wsrep_cluster_status")) {
      if (auto s = detail::read_enum<int>(ctx_, *x, {{"Primary", 0}, {"Non-Primary", 1}, {"Disconnected", 2}})) {
        q.require.wsrep_cluster_status = x->node.Scalar();
        (void)s;
      }
    }
    auto opt_bool = [&](const char* key, std::optional<bool>& out) {
      if (auto x = rm.find(key)) {
        if (auto b = detail::read_bool(ctx_, *x)) out = *b;
      }
    };
    opt_bool("wsrep_ready", q.require.wsrep_ready);
    opt_bool("wsrep_desync", q.require.wsrep_desync);
    opt_bool("read_only", q.require.read_only);
  }
}

void Loader::read_exec_check(const Value& v, ExecCheck& e) {
  MapView m(ctx_, v, {"command", "agent_output"}, {"command"});
  if (!m.valid()) return;
  if (auto c = m.find("command")) {
    e.command = detail::read_string_list(ctx_, *c);
    if (c->node.IsSequence() && e.command.empty()) {
      ctx_.error(c->place.mark, c->place.path + ": the command needs at least the program");
    } else if (!e.command.empty() && e.command.front().front() != '/') {
      ctx_.error(c->place.mark, c->place.path + ": the program must be an absolute path (no shell, no "
                                                "PATH search), got '" + e.command.front() + "'");
    }
  }
  m.get("agent_output", e.agent_output);
}

void Loader::read_services(const Value& v, Config& c) {
  detail::for_each_named(ctx_, v, "service", [&](const std::string& name, const Value& sv) {
    MapView m(ctx_, sv,
              {"listen", "mode", "balance", "check", "depends_on", "timeouts", "retries",
               "redispatch", "maxqueue", "on_server_down", "forward_for", "servers", "passive", "panic_threshold",
               "routes"});
    if (!m.valid()) return;
    // listen: and servers: are required, except where routes make up for them (checked
    // once every service is read: check_routes()).
    if (!m.find("listen")) without_listen_.insert(name);
    if (!m.find("servers")) without_servers_.insert(name);
    Service s;
    s.name = name;
    service_places_[name] = sv.place;
    m.get("mode", s.mode, {{"tcp", ServiceMode::Tcp}, {"http", ServiceMode::Http}});
    if (auto l = m.find("listen")) {
      detail::for_each_item(ctx_, *l, [&](const Value& item) {
        auto text = detail::read_string(ctx_, item);
        if (!text) return;
        Listen listen;
        if (auto ep = parse_endpoint(*text)) {
          listen.endpoint = *ep;
        } else {
          size_t colon = text->rfind(':');
          std::string vip = colon == std::string::npos ? "" : text->substr(0, colon);
          auto port = colon == std::string::npos ? std::nullopt : parse_port(text->substr(colon + 1));
          if (!is_valid_name(vip) || !port || looks_like_ipv4(vip)) {
            ctx_.error(item.place.mark, item.place.path + ": expected VIPNAME:PORT, ADDRESS:PORT or "
                                                          "[IPV6]:PORT, got '" + *text + "'" +
                                            endpoint_hint(*text));
            return;
          }
          listen.vip = vip;
          listen.endpoint.port = *port;
          listen_vip_refs_[name].emplace_back(vip, item.place);
        }
        listen_places_[name].push_back(item.place);
        s.listen.push_back(std::move(listen));
      });
      if (l->node.IsSequence() && l->node.size() == 0) {
        ctx_.error(l->place.mark, l->place.path + ": list at least one VIPNAME:PORT or ADDRESS:PORT");
      }
    }
    m.get("balance", s.balance,
          {{"roundrobin", Balance::RoundRobin}, {"leastconn", Balance::LeastConn},
           {"source", Balance::Source}, {"single-writer", Balance::SingleWriter}});
    if (auto ch = m.find("check")) {
      if (auto n = detail::read_string(ctx_, *ch)) {
        s.check = *n;
        service_check_places_[name] = ch->place;
      }
    }
    if (auto d = m.find("depends_on")) {
      detail::for_each_item(ctx_, *d, [&](const Value& item) {
        if (auto n = detail::read_string(ctx_, item)) {
          s.depends_on.push_back(*n);
          depends_places_[name].push_back(item.place);
        }
      });
    }
    if (auto t = m.find("timeouts")) {
      MapView tm(ctx_, *t, {"connect", "client", "server", "queue", "http_request", "http_keep_alive", "idle"});
      tm.get("connect", s.timeouts.connect, Duration{1}, Duration{3'600'000});
      tm.get("client", s.timeouts.client, Duration{0}, kMaxDuration);
      tm.get("server", s.timeouts.server, Duration{0}, kMaxDuration);
      tm.get("queue", s.timeouts.queue, Duration{0}, Duration{3'600'000});
      tm.get("http_request", s.timeouts.http_request, Duration{1}, Duration{3'600'000});
      tm.get("http_keep_alive", s.timeouts.http_keep_alive, Duration{0}, Duration{3'600'000});
      tm.get("idle", s.timeouts.idle, Duration{0}, kMaxDuration);
    }
    m.get("retries", s.retries, 0, 10);
    m.get("redispatch", s.redispatch);
    m.get("maxqueue", s.maxqueue, 1, 1'000'000);
    m.get("on_server_down", s.on_server_down,
          {{"none", OnServerDown::None}, {"close-sessions", OnServerDown::CloseSessions}});
    if (auto p = m.find("passive")) read_passive(*p, s.passive);
    if (auto p = m.find("panic_threshold")) {
      if (auto pct = read_percent(ctx_, *p, 100)) s.panic_threshold_percent = *pct;
    }
    if (auto f = m.find("forward_for")) {
      if (auto b = detail::read_bool(ctx_, *f)) {
        s.forward_for = *b;
        if (*b && s.mode != ServiceMode::Http) {
          ctx_.error(f->place.mark, f->place.path + ": X-Forwarded-* headers need mode: http");
        }
      }
    }
    if (auto sl = m.find("servers")) {
      std::map<std::string, Place> names;
      std::map<Endpoint, Place> addrs;
      detail::for_each_item(ctx_, *sl, [&](const Value& item) {
        Server srv;
        read_server(item, srv);
        if (srv.name.empty()) return;
        auto [it, fresh] = names.emplace(srv.name, item.place);
        if (!fresh) {
          ctx_.error(item.place.mark, item.place.path + ": duplicate server name '" + srv.name +
                                          "' (first at line " + std::to_string(it->second.mark.line + 1) + ")");
          return;
        }
        if (srv.address.port != 0) {
          auto [at, afresh] = addrs.emplace(srv.address, item.place);
          if (!afresh) {
            ctx_.error(item.place.mark, item.place.path + ": server address " + srv.address.str() +
                                            " is already used by " + at->second.path);
          }
        }
        s.servers.push_back(std::move(srv));
      });
      if (sl->node.IsSequence() && sl->node.size() == 0) {
        ctx_.error(sl->place.mark, sl->place.path + ": list at least one server");
      }
    }
    if (auto rl = m.find("routes")) {
      routes_key_places_[name] = rl->place;
      if (s.mode != ServiceMode::Http) {
        ctx_.error(rl->place.mark, rl->place.path + ": routes need mode: http");
      }
      detail::for_each_item(ctx_, *rl, [&](const Value& item) {
        Route r;
        read_route(item, r);
        if (r.service.empty()) return;
        route_places_[name].push_back(item.place);
        s.routes.push_back(std::move(r));
      });
      if (rl->node.IsSequence() && rl->node.size() == 0) {
        ctx_.error(rl->place.mark, rl->place.path + ": list at least one route, or leave the key out");
      }
    }
    c.services.push_back(std::move(s));
  });
}

void Loader::read_server(const Value& v, Server& s) {
  MapView m(ctx_, v, {"name", "address", "weight", "maxconn", "backup", "proxy_protocol"},
            {"name", "address"});
  if (!m.valid()) return;
  if (auto n = m.find("name")) {
    if (auto name = detail::read_name(ctx_, *n)) s.name = *name;
  }
  if (auto a = m.find("address")) {
    if (auto text = detail::read_string(ctx_, *a)) {
      if (auto ep = parse_endpoint(*text)) {
        s.address = *ep;
        if (ep->address.is_unspecified()) {
          ctx_.error(a->place.mark, a->place.path + ": a server cannot be at the unspecified address");
        }
      } else {
        ctx_.error(a->place.mark, a->place.path + ": expected ADDRESS:PORT or [IPV6]:PORT (names are not "
                                                  "resolved), got '" + *text + "'" + endpoint_hint(*text));
      }
    }
  }
  m.get("weight", s.weight, 0, 256);
  m.get("maxconn", s.maxconn, 1, 1'000'000);
  m.get("backup", s.backup);
  m.get("proxy_protocol", s.proxy_protocol,
        {{"none", ProxyProtocol::None}, {"v1", ProxyProtocol::V1}, {"v2", ProxyProtocol::V2}});
}

void Loader::read_passive(const Value& v, PassiveOptions& p) {
  MapView m(ctx_, v, {"connect_failures", "resets", "http_5xx", "window", "backoff", "max_backoff"});
  if (!m.valid()) return;
  m.get("connect_failures", p.connect_failures, 0, 100);
  m.get("resets", p.resets, 0, 100);
  m.get("http_5xx", p.http_5xx, 0, 100'000);
  m.get("window", p.window, Duration{100}, Duration{3'600'000});
  m.get("backoff", p.backoff, Duration{10}, Duration{3'600'000});
  m.get("max_backoff", p.max_backoff, Duration{10}, Duration{86'400'000});
  if (p.max_backoff < p.backoff) {
    auto where = m.find("max_backoff").value_or(m.find("backoff").value_or(Value{{}, m.place()})).place;
    ctx_.error(where.mark, m.place().path + ": max_backoff (" + format_duration(p.max_backoff) +
                               ") is shorter than backoff (" + format_duration(p.backoff) + ")");
  }
}

void Loader::read_alerts(const Value& v, AlertOptions& a) {
  MapView m(ctx_, v, {"webhook", "exec", "max_per_minute", "group_wait"});
  if (!m.valid()) return;
  if (auto w = m.find("webhook")) {
    MapView wm(ctx_, *w, {"url", "timeout"}, {"url"});
    WebhookSink sink;
    bool ok = wm.valid();
    if (auto u = wm.find("url")) {
      if (auto text = detail::read_string(ctx_, *u)) {
        sink.url = *text;
        if (std::string why = parse_webhook_url(*text, sink); !why.empty()) {
          ctx_.error(u->place.mark, u->place.path + ": " + why + ", got '" + *text + "'");
          ok = false;
        }
      } else {
        ok = false;
      }
    }
    wm.get("timeout", sink.timeout, Duration{10}, Duration{60'000});
    if (ok) a.webhook = sink;
  }
  if (auto e = m.find("exec")) {
    MapView em(ctx_, *e, {"command", "timeout"}, {"command"});
    ExecSink sink;
    if (auto c = em.find("command")) {
      sink.command = detail::read_string_list(ctx_, *c);
      if (c->node.IsSequence() && sink.command.empty()) {
        ctx_.error(c->place.mark, c->place.path + ": the command needs at least the program");
      } else if (!sink.command.empty() && (sink.command.front().empty() || sink.command.front()[0] != '/')) {
        ctx_.error(c->place.mark, c->place.path + ": the program must be an absolute path (no shell, no "
                                                  "PATH search), got '" + sink.command.front() + "'");
        sink.command.clear();
      }
    }
    em.get("timeout", sink.timeout, Duration{10}, Duration{600'000});
    if (em.valid() && !sink.command.empty()) a.exec = sink;
  }
  m.get("max_per_minute", a.max_per_minute, 1, 10'000);
  m.get("group_wait", a.group_wait, Duration{0}, Duration{600'000});
}

namespace {

// A host name or address as a Host header names it, without the port: letters, digits,
// '-', '.', '_' (reg-name as used in practice), or an IPv6 literal in brackets.
bool valid_route_host(std::string_view h) {
  if (h.empty() || h.size() > 253) return false;
  if (h.front() == '[') {
    if (h.size() < 3 || h.back() != ']') return false;
    for (char ch : h.substr(1, h.size() - 2)) {
      if (!std::isxdigit(static_cast<unsigned char>(ch)) && ch != ':' && ch != '.') return false;
    }
    return true;
  }
  for (char ch : h) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '.' && ch != '_') return false;
  }
  return true;
}

// A path prefix: starts with '/', and holds only what a request path may (no query, no
// fragment, no spaces or control characters).
bool valid_path_prefix(std::string_view p) {
  if (p.empty() || p.front() != '/' || p.size() > 1024) return false;
  for (char ch : p) {
    auto u = static_cast<unsigned char>(ch);
    if (u <= 0x20 || u >= 0x7f || ch == '?' || ch == '#') return false;
  }
  return true;
}

}  // namespace

void Loader::read_route(const Value& v, Route& r) {
  MapView m(ctx_, v, {"host", "path_prefix", "service"}, {"service"});
  if (!m.valid()) return;
  if (auto h = m.find("host")) {
    if (auto text = detail::read_string(ctx_, *h)) {
      const size_t colon = text->find(':');
      if (valid_route_host(*text)) {
        r.host = *text;
      } else if (colon != std::string::npos && colon > 0 && text->front() != '[' &&
                 valid_route_host(text->substr(0, colon))) {
        ctx_.error(h->place.mark, h->place.path + ": write the host without a port ('" + text->substr(0, colon) +
                                      "'); a route matches every port");
      } else {
        ctx_.error(h->place.mark, h->place.path + ": expected a host name like glance.example.com, got '" + *text + "'");
      }
    }
  }
  if (auto p = m.find("path_prefix")) {
    if (auto text = detail::read_string(ctx_, *p)) {
      if (valid_path_prefix(*text)) {
        r.path_prefix = *text;
      } else {
        ctx_.error(p->place.mark, p->place.path + ": expected a path starting with '/', without spaces, "
                                                  "'?' or '#', got '" + *text + "'");
      }
    }
  }
  if (!m.find("host") && !m.find("path_prefix")) {
    ctx_.error(v.place.mark, v.place.path + ": a route needs host, path_prefix or both");
  }
  if (auto sv = m.find("service")) {
    if (auto name = detail::read_name(ctx_, *sv)) r.service = *name;
  }
}

// Routes name http services with servers. A service may go without listen: when routes lead
// to it, and without servers: when it has routes (requests that match none get 503).
void Loader::check_routes(const Config& c) {
  std::set<std::string> targets;
  for (const Service& s : c.services) {
    const auto& places = route_places_[s.name];
    for (size_t i = 0; i < s.routes.size() && i < places.size(); ++i) {
      const std::string& t = s.routes[i].service;
      const Place& place = places[i];
      const Service* target = c.find_service(t);
      if (t == s.name) {
        ctx_.error(place.mark, place.path + ".service: a route cannot lead back to its own service");
      } else if (!target) {
        ctx_.error(place.mark, place.path + ".service: unknown service '" + t + "'");
      } else if (target->mode != ServiceMode::Http) {
        ctx_.error(place.mark, place.path + ".service: service '" + t + "' is not in mode: http");
      } else if (target->servers.empty()) {
        ctx_.error(place.mark, place.path + ".service: service '" + t + "' has no servers");
      } else {
        targets.insert(t);
      }
    }
  }
  for (const Service& s : c.services) {
    const Place& place = service_places_[s.name];
    if (without_listen_.count(s.name)) {
      if (s.mode != ServiceMode::Http) {
        ctx_.error(place.mark, place.path + ": missing required key 'listen'");
      } else if (!targets.count(s.name)) {
        ctx_.error(place.mark, place.path + ": missing required key 'listen' (only a service that another "
                                            "service's routes lead to may go without)");
      }
    }
    if (without_servers_.count(s.name) && !routes_key_places_.count(s.name)) {
      ctx_.error(place.mark, place.path + ": missing required key 'servers'");
    }
  }
}

void Loader::check_references(Config& c) {
  // Nodes: unique names, ids, addresses.
  {
    std::map<std::string, size_t> names;
    std::map<uint32_t, size_t> ids;
    std::map<Address, size_t> addrs;
    for (size_t i = 0; i < c.cluster.nodes.size(); ++i) {
      const Node& n = c.cluster.nodes[i];
      const std::string& path = node_places_[i].path;
      YAML::Mark mark = node_places_[i].mark;
      if (!n.name.empty() && !names.emplace(n.name, i).second)
        ctx_.error(mark, path + ": duplicate node name '" + n.name + "'");
      if (n.id != 0 && !ids.emplace(n.id, i).second)
        ctx_.error(mark, path + ": duplicate node id " + std::to_string(n.id));
      if (!n.address.is_unspecified() && !addrs.emplace(n.address, i).second)
        ctx_.error(mark, path + ": duplicate node address " + n.address.str());
      if (c.cluster.mode == ClusterMode::Corosync && n.fencing.empty() && !n.name.empty()) {
        ctx_.warning(mark, path + ": node '" + n.name + "' has no fencing levels; a VIP it held "
                                                        "can only move once its lease has expired");
      }
    }
  }
  // Fencing levels -> devices.
  for (const auto& [device, place] : fence_refs_) {
    if (c.fence_devices.count(device) == 0) {
      ctx_.error(place.mark, place.path + ": unknown fence device '" + device + "'" +
                                 (c.fence_devices.empty() ? " (there is no fence_devices section)" : ""));
    }
  }
  // VIPs: unique addresses, preferred nodes exist.
  {
    std::map<Address, std::string> seen;
    for (const Vip& v : c.vips) {
      auto [it, fresh] = seen.emplace(v.address.address, v.name);
      if (!fresh && !broken_vips_.count(v.name) && !broken_vips_.count(it->second)) {
        ctx_.error(vip_places_[v.name].mark, "vips." + v.name + ": address " + v.address.address.str() +
                                                 " is already VIP '" + it->second + "'");
      }
      const auto& places = prefer_places_[v.name];
      for (size_t i = 0; i < v.prefer.size() && i < places.size(); ++i) {
        if (!c.find_node(v.prefer[i])) {
          ctx_.error(places[i].mark, places[i].path + ": unknown node '" + v.prefer[i] + "'");
        }
      }
    }
  }
  // Services: listen VIPs, checks, dependencies.
  for (Service& s : c.services) {
    auto& vip_refs = listen_vip_refs_[s.name];
    size_t vip_index = 0;
    for (Listen& l : s.listen) {
      if (!l.vip) continue;
      const Place& place = vip_refs[vip_index++].second;
      if (const Vip* v = c.find_vip(*l.vip)) {
        l.endpoint.address = v->address.address;
      } else if (!broken_vips_.count(*l.vip)) {
        ctx_.error(place.mark, place.path + ": unknown VIP '" + *l.vip + "'" +
                                   (c.vips.empty() ? " (there is no vips section)" : ""));
      }
    }
    if (s.check && !c.find_check(*s.check)) {
      const Place& place = service_check_places_[s.name];
      ctx_.error(place.mark, place.path + ": unknown check '" + *s.check + "'");
    }
    const auto& dplaces = depends_places_[s.name];
    std::set<std::string> seen;
    for (size_t i = 0; i < s.depends_on.size() && i < dplaces.size(); ++i) {
      const std::string& d = s.depends_on[i];
      if (d == s.name) {
        ctx_.error(dplaces[i].mark, dplaces[i].path + ": a service cannot depend on itself");
      } else if (!c.find_service(d)) {
        ctx_.error(dplaces[i].mark, dplaces[i].path + ": unknown service '" + d + "'");
      } else if (!seen.insert(d).second) {
        ctx_.error(dplaces[i].mark, dplaces[i].path + ": '" + d + "' is listed twice");
      }
    }
  }
}

void Loader::check_listen_sockets(const Config& c) {
  struct Seen {
    const Service* service;
    Endpoint endpoint;
    Place place;
  };
  std::vector<Seen> seen;
  for (const Service& s : c.services) {
    const auto& places = listen_places_[s.name];
    for (size_t i = 0; i < s.listen.size() && i < places.size(); ++i) {
      const Endpoint& ep = s.listen[i].endpoint;
      // A listener on an unknown VIP, or on a VIP whose address did not parse, was
      // reported already; comparing its placeholder address would only add noise.
      if (s.listen[i].vip && (!c.find_vip(*s.listen[i].vip) || broken_vips_.count(*s.listen[i].vip)))
        continue;
      for (const Seen& other : seen) {
        bool same_family = other.endpoint.address.family == ep.address.family;
        bool clash = other.endpoint == ep ||
                     (same_family && other.endpoint.port == ep.port &&
                      (other.endpoint.address.is_unspecified() || ep.address.is_unspecified()));
        if (clash) {
          ctx_.error(places[i].mark, places[i].path + ": " + ep.str() + " is already a listener of " +
                                         (other.service == &s ? "this service" : "service '" + other.service->name + "'") +
                                         " (" + other.place.path + ")");
          break;
        }
      }
      seen.push_back({&s, ep, places[i]});
    }
  }
}

void Loader::check_dependency_cycles(const Config& c) {
  // Depth-first search with colours; each cycle is reported once, at the service where
  // the search closed it.
  enum Colour { White, Grey, Black };
  std::map<std::string, Colour> colour;
  std::vector<std::string> stack;
  std::function<void(const Service&)> visit = [&](const Service& s) {
    colour[s.name] = Grey;
    stack.push_back(s.name);
    const auto& places = depends_places_[s.name];
    for (size_t i = 0; i < s.depends_on.size(); ++i) {
      const std::string& d = s.depends_on[i];
      const Service* dep = c.find_service(d);
      if (!dep || dep == &s) continue;
      if (colour[d] == Grey) {
        std::string cycle;
        auto from = std::find(stack.begin(), stack.end(), d);
        for (auto it = from; it != stack.end(); ++it) cycle += *it + " -> ";
        cycle += d;
        const Place& place = i < places.size() ? places[i] : service_places_[s.name];
        ctx_.error(place.mark, place.path + ": dependency cycle " + cycle);
      } else if (colour[d] == White) {
        visit(*dep);
      }
    }
    stack.pop_back();
    colour[s.name] = Black;
  };
  for (const Service& s : c.services) {
    if (colour[s.name] == White) visit(s);
  }
}

// yaml-cpp 0.7's LoadAll() never returns (and allocates without bound) when its parser is
// stuck on a token it cannot consume, such as a ',' at the top level: each round yields
// another empty document at the same place (jbeder/yaml-cpp#1040, fixed upstream after
// 0.7). So documents are counted here with a bounded loop over the parser's events, a
// parser that does not advance is reported as a syntax error, and only then is the first
// document built with YAML::Load().
struct DocumentScan {
  std::vector<YAML::Mark> starts;
  bool stuck = false;
  YAML::Mark stuck_mark;
};

class DocumentStarts : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> starts;
  void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

DocumentScan scan_documents(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentStarts handler;
  DocumentScan scan;
  // Two documents are enough to refuse the file; a third round tells a stuck parser.
  for (int round = 0; round < 3 && parser.HandleNextDocument(handler); ++round) {
    size_t n = handler.starts.size();
    if (n >= 2 && handler.starts[n - 1].pos == handler.starts[n - 2].pos) {
      scan.stuck = true;
      scan.stuck_mark = handler.starts[n - 1];
      break;
    }
  }
  scan.starts = handler.starts;
  return scan;
}

LoadResult finish(Context& ctx, std::vector<Diagnostic> diags, std::unique_ptr<Config> config) {
  LoadResult r;
  std::stable_sort(diags.begin(), diags.end(), [](const Diagnostic& a, const Diagnostic& b) {
    // File-level findings (line 0) go last: they summarise ("too many errors").
    auto key = [](const Diagnostic& d) { return std::pair(d.line == 0 ? INT32_MAX : d.line, d.column); };
    return key(a) < key(b);
  });
  r.diagnostics = std::move(diags);
  if (ctx.error_count() == 0 && config) r.config = std::move(config);
  return r;
}

}  // namespace

LoadResult load_string(std::string_view text, const std::string& name, const LoadOptions& options) {
  std::vector<Diagnostic> diags;
  Context ctx(name, diags);
  YAML::Mark file_mark;  // line 0, column 0 -> reported as 1:1
  if (text.size() > kMaxConfigBytes) {
    ctx.error(file_mark, "the file is " + std::to_string(text.size()) + " bytes; a config file is at most " +
                             std::to_string(kMaxConfigBytes / (1024 * 1024)) + " MiB");
    return finish(ctx, std::move(diags), nullptr);
  }
  if (!check_text(ctx, text)) return finish(ctx, std::move(diags), nullptr);

  YAML::Node root;
  try {
    const std::string owned(text);
    DocumentScan scan = scan_documents(owned);
    if (scan.stuck) {
      char c = scan.stuck_mark.pos >= 0 && static_cast<size_t>(scan.stuck_mark.pos) < owned.size()
                   ? owned[static_cast<size_t>(scan.stuck_mark.pos)] : '?';
      ctx.error(scan.stuck_mark, std::string("YAML syntax error: unexpected '") + c + "' here");
      return finish(ctx, std::move(diags), nullptr);
    }
    if (scan.starts.size() > 1) {
      ctx.error(scan.starts[1], "the file holds more than one YAML document; keep the whole "
                                "configuration in one");
      return finish(ctx, std::move(diags), nullptr);
    }
    if (!scan.starts.empty()) root = YAML::Load(owned);
  } catch (const YAML::DeepRecursion& e) {
    ctx.error(e.mark, "YAML nesting is too deep (" + std::to_string(e.depth()) + " levels)");
    return finish(ctx, std::move(diags), nullptr);
  } catch (const YAML::Exception& e) {
    ctx.error(e.mark, "YAML syntax error: " + e.msg + tab_hint(text, e.mark));
    return finish(ctx, std::move(diags), nullptr);
  } catch (const std::exception& e) {
    ctx.error(file_mark, std::string("cannot parse the file: ") + e.what());
    return finish(ctx, std::move(diags), nullptr);
  }
  if (!root.IsDefined() || root.IsNull()) {
    ctx.error(file_mark, "the file is empty; expected a mapping with at least a 'cluster' section");
    return finish(ctx, std::move(diags), nullptr);
  }
  auto config = std::make_unique<Config>();
  config->source_path = name;
  config->sha256 = hex_sha256(text);
  LoadOptions opts = options;
  try {
    Loader(ctx, opts).read(root, *config);
  } catch (const std::exception& e) {
    // The readers never throw on bad input; this is a guard against yaml-cpp surprises.
    ctx.error(file_mark, std::string("internal error while reading the file: ") + e.what());
  }
  return finish(ctx, std::move(diags), std::move(config));
}

LoadResult load_file(const std::string& path, const LoadOptions& options) {
  std::vector<Diagnostic> diags;
  Context ctx(path, diags);
  YAML::Mark file_mark;
  std::error_code ec;
  auto status = std::filesystem::status(path, ec);
  // status() also sets ec for a missing file; that case gets the plain message.
  if (status.type() == std::filesystem::file_type::not_found || ec) {
    ctx.error(file_mark, "cannot open the config file: " +
                             (status.type() == std::filesystem::file_type::not_found ? std::string("no such file")
                                                                                    : ec.message()));
    return finish(ctx, std::move(diags), nullptr);
  }
  if (!std::filesystem::is_regular_file(status)) {
    ctx.error(file_mark, "the config path is not a regular file");
    return finish(ctx, std::move(diags), nullptr);
  }
  auto size = std::filesystem::file_size(path, ec);
  if (!ec && size > kMaxConfigBytes) {
    ctx.error(file_mark, "the file is " + std::to_string(size) + " bytes; a config file is at most " +
                             std::to_string(kMaxConfigBytes / (1024 * 1024)) + " MiB");
    return finish(ctx, std::move(diags), nullptr);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ctx.error(file_mark, std::string("cannot read the config file: ") + std::strerror(errno));
    return finish(ctx, std::move(diags), nullptr);
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  LoadOptions opts = options;
  if (opts.base_dir.empty()) {
    opts.base_dir = std::filesystem::absolute(path, ec).parent_path().string();
  }
  return load_string(buf.str(), path, opts);
}

size_t LoadResult::error_count() const {
  return static_cast<size_t>(std::count_if(diagnostics.begin(), diagnostics.end(), [](const Diagnostic& d) {
    return d.severity == Diagnostic::Severity::Error;
  }));
}

std::string Diagnostic::format() const {
  std::string out = file + ":" + std::to_string(line > 0 ? line : 1) + ":" +
                    std::to_string(column > 0 ? column : 1) + ": ";
  if (severity == Severity::Warning) out += "warning: ";
  return out + message;
}

}  // namespace hafront::config
