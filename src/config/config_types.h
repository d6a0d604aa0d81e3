// Plain types of the configuration model: enums and structs only, cheap to include anywhere.
// A Config is built once by the loader (config.h), validated as a whole, and then never
// changed: the daemon swaps the whole object on reload.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace hafront::config {

// Durations are written with a unit in the file (300ms, 2s, 90m) and held in milliseconds.
using Duration = std::chrono::milliseconds;

// An IPv4 or IPv6 address, in network byte order.
struct Address {
  enum class Family : uint8_t { V4, V6 };
  Family family = Family::V4;
  std::array<uint8_t, 16> bytes{};  // V4 uses the first 4 bytes

  bool is_v6() const { return family == Family::V6; }
  bool is_unspecified() const;  // 0.0.0.0 or ::
  std::string str() const;      // 192.0.2.1, 2001:db8::1
  auto operator<=>(const Address&) const = default;
};

// An address with a prefix length: 192.0.2.100/24.
struct Cidr {
  Address address;
  uint8_t prefix = 32;
  std::string str() const;
  auto operator<=>(const Cidr&) const = default;
};

// An address and a port: 192.0.2.10:5000, [2001:db8::1]:5000.
struct Endpoint {
  Address address;
  uint16_t port = 0;
  std::string str() const;
  auto operator<=>(const Endpoint&) const = default;
};

// A secret is referenced by the path of a file that holds it; the model never holds the
// secret itself. The part that needs it (fence runner, MySQL check) reads the file when it
// uses it, so rotating a password needs no reload and nothing can log it by accident.
struct SecretRef {
  std::string path;  // absolute, resolved against the config file's folder

  bool operator==(const SecretRef&) const = default;
};

// ---- cluster -------------------------------------------------------------------------

enum class ClusterMode : uint8_t { Standalone, Corosync };

// One device of a fencing level, with the plug (outlet, port) where the device needs one.
struct FenceRef {
  std::string device;
  std::optional<std::string> plug;

  bool operator==(const FenceRef&) const = default;
};

// Ordered fencing levels: all devices of a level must succeed; on failure the next level
// is tried. fencing[0] is level 1.
using FenceTopology = std::vector<std::vector<FenceRef>>;

struct Node {
  std::string name;
  uint32_t id = 0;  // Corosync node id, unique, >= 1
  Address address;  // ring address (Corosync link 0)
  FenceTopology fencing;
  // Wait this long before fencing this node (Pacemaker's pcmk_delay_base): in a two-node
  // fence race, the node with the delay survives.
  Duration fence_delay{0};

  bool operator==(const Node&) const = default;
};

struct QuorumOptions {
  bool two_node = false;       // votequorum two_node: a 2-node cluster stays quorate with 1
  bool wait_for_all = false;   // defaults to two_node, as in votequorum
  std::optional<uint32_t> expected_votes;

  bool operator==(const QuorumOptions&) const = default;
};

struct ClusterTimings {
  Duration token{1000};             // Corosync totem token time-out
  Duration heartbeat_interval{200}; // hafront's own CPG heartbeat
  Duration liveness_timeout{2000};  // a member whose daemon is silent this long is lost
  // The lease driver (doc/lease.md): how far one acknowledged heartbeat extends a holder's
  // kernel lease, and how much longer the survivors wait before they treat it as run out
  // (clock drift, scheduling).
  Duration lease{600};
  Duration lease_margin{100};

  bool operator==(const ClusterTimings&) const = default;
};

// What a fence does: power the node off and leave it off (until an operator looks), or
// off, confirmed, then on again so it reboots and rejoins (Pacemaker's default).
enum class FenceAction : uint8_t { Off, Reboot };

// How lost nodes are fenced (see src/fence/fencer.h).
struct FencingOptions {
  FenceAction action = FenceAction::Off;
  Duration timeout{60000};           // one fence request: every level, confirmations, retries
  Duration random_delay{0};          // up to this much extra delay, at random (pcmk_delay_max)
  Duration priority_delay{0};        // extra delay before fencing a node that holds VIPs, so
                                     // in a fence race the holder shoots first
                                     // (priority-fencing-delay)
  Duration monitor_interval{60000};  // `monitor` of every device; 0 = never
  std::vector<std::string> agent_dirs{"/usr/sbin", "/usr/local/sbin"};  // where fence_* live

  bool operator==(const FencingOptions&) const = default;
};

struct Cluster {
  std::string name;
  ClusterMode mode = ClusterMode::Standalone;
  std::vector<Node> nodes;
  QuorumOptions quorum;
  ClusterTimings timings;
  FencingOptions fencing;

  bool operator==(const Cluster&) const = default;
};

// ---- fencing --------------------------------------------------------------------------

struct FenceDevice {
  std::string name;
  std::string agent;                         // fence_ipmilan, fence_apc_snmp, fence_redfish, ...
  std::map<std::string, std::string> params; // passed to the agent on stdin as key=value
  std::map<std::string, SecretRef> secrets;  // agent parameter name -> file holding its value
  Duration timeout{30000};                   // one agent run, whole process group killed after

  bool operator==(const FenceDevice&) const = default;
};

// ---- VIPs -----------------------------------------------------------------------------

enum class VipDriver : uint8_t {
  Auto,     // lease where the kernel supports it, else address
  Lease,    // kernel-enforced lease (BPF answers ARP/NA only while the lease is valid)
  Address,  // classic kernel address + gratuitous ARP, like keepalived
};

struct GarpOptions {
  uint32_t count = 5;           // frames per burst on acquire (keepalived: 5)
  Duration interval{100};       // between frames of a burst
  Duration refresh{0};          // periodic re-announcement; 0 = off

  bool operator==(const GarpOptions&) const = default;
};

// Which services must be able to serve for this node to offer a VIP (issue 4): every
// service listening on it (all), at least one (any), or none (health is ignored; the
// listeners must still be up).
enum class HealthGate : uint8_t { All, Any, None };

struct Vip {
  std::string name;
  Cidr address;
  std::string interface;
  std::vector<std::string> prefer;  // node names, most preferred first
  bool failback = false;            // move back to a more preferred node when it returns
  VipDriver driver = VipDriver::Auto;
  GarpOptions garp;
  // Before taking the address, listen this long for anyone else answering for it (ARP
  // probe / DAD solicitation); 0 skips the check.
  Duration probe{50};
  HealthGate health_gate = HealthGate::All;

  bool operator==(const Vip&) const = default;
};

// ---- checks ---------------------------------------------------------------------------

enum class CheckKind : uint8_t { Tcp, Http, Mysql, Exec };

struct TlsOptions {
  bool verify = true;
  std::optional<std::string> ca_file;
  std::optional<std::string> sni;

  bool operator==(const TlsOptions&) const = default;
};

struct JsonExpect {
  std::string field;   // a JSON pointer, e.g. /version/status
  std::string equals;  // compared with the field's value as text

  bool operator==(const JsonExpect&) const = default;
};

struct HttpCheck {
  bool tls = false;  // true for the `https:` form
  std::string method = "GET";
  std::string path = "/";
  std::optional<std::string> host;
  std::map<std::string, std::string> headers;
  std::vector<uint16_t> expect_status{200};
  std::optional<std::string> expect_body;        // substring
  std::optional<std::string> expect_body_regex;  // ECMAScript regex, validated at load
  std::optional<JsonExpect> expect_json;
  TlsOptions tls_options;

  bool operator==(const HttpCheck&) const = default;
};

struct MysqlRequire {
  std::optional<int> wsrep_local_state;  // 4 = Synced
  std::optional<std::string> wsrep_cluster_status;
  std::optional<bool> wsrep_ready;
  std::optional<bool> wsrep_desync;
  std::optional<bool> read_only;

  bool operator==(const MysqlRequire&) const = default;
};

struct MysqlCheck {
  std::string user;
  std::optional<SecretRef> password;
  MysqlRequire require;

  bool operator==(const MysqlCheck&) const = default;
};

struct ExecCheck {
  std::vector<std::string> command;  // argv; no shell
  bool agent_output = false;         // parse HAProxy agent-check words (up, down, drain, N%)

  bool operator==(const ExecCheck&) const = default;
};

struct Check {
  std::string name;
  CheckKind kind = CheckKind::Tcp;
  HttpCheck http;   // when kind == Http
  MysqlCheck mysql; // when kind == Mysql
  ExecCheck exec;   // when kind == Exec
  std::optional<uint16_t> port;  // check this port instead of the server's
  Duration interval{2000};
  Duration fast_interval{500};  // while a server is changing state
  Duration timeout{1000};
  uint32_t rise = 2;
  uint32_t fall = 3;
  uint32_t jitter_percent = 10;

  bool operator==(const Check&) const = default;
};

// ---- services -------------------------------------------------------------------------

enum class ServiceMode : uint8_t { Tcp, Http };
enum class Balance : uint8_t { RoundRobin, LeastConn, Source, SingleWriter };
enum class OnServerDown : uint8_t { None, CloseSessions };
enum class ProxyProtocol : uint8_t { None, V1, V2 };

// Where a service listens: a VIP (by name) or a literal address, and a port.
struct Listen {
  std::optional<std::string> vip;  // set when written as VIPNAME:PORT
  Endpoint endpoint;               // the VIP's address or the literal one

  bool operator==(const Listen&) const = default;
};

struct Server {
  std::string name;
  Endpoint address;
  uint32_t weight = 1;
  std::optional<uint32_t> maxconn;
  bool backup = false;
  ProxyProtocol proxy_protocol = ProxyProtocol::None;

  bool operator==(const Server&) const = default;
};

struct Timeouts {
  Duration connect{5000};
  Duration client{60000};
  Duration server{60000};
  Duration queue{5000};
  Duration http_request{10000};
  Duration http_keep_alive{60000};
  // tcp mode: once connected, end a connection on which no byte moved either way for this
  // long; when set it takes over from client and server (HAProxy's `timeout tunnel`).
  // 0 = off.
  Duration idle{0};

  bool operator==(const Timeouts&) const = default;
};

// Passive health (doc/health.md): what the proxy sees on real traffic ejects a server at
// once; it comes back after a back-off and a passing active check. 0 turns a trigger off.
struct PassiveOptions {
  uint32_t connect_failures = 1;  // failed connects in a row (refused, time-out, error)
  uint32_t resets = 3;            // established connections reset by the server in a row
  uint32_t http_5xx = 10;         // 5xx answers in a row (no other answer between) within `window`
  Duration window{10000};
  Duration backoff{1000};         // the first ejection; doubles per re-ejection
  Duration max_backoff{30000};    // at most; a server quiet this long starts over at `backoff`

  bool operator==(const PassiveOptions&) const = default;
};

// http mode: requests whose Host and path match go to another service's servers (the
// first matching route wins; no match: the service's own servers).
struct Route {
  std::optional<std::string> host;         // compared ignoring case, without the port
  std::optional<std::string> path_prefix;  // a plain prefix of the path, starting with '/'
  std::string service;                     // another service in mode http

  bool operator==(const Route&) const = default;
};

struct Service {
  std::string name;
  ServiceMode mode = ServiceMode::Tcp;
  std::vector<Listen> listen;
  Balance balance = Balance::RoundRobin;
  std::optional<std::string> check;
  std::vector<std::string> depends_on;
  Timeouts timeouts;
  uint32_t retries = 3;
  bool redispatch = true;
  // Connections waiting at once for a server slot when every server is at maxconn; more
  // are answered 503 at once. Unset: no limit but timeouts.queue (and proxy.max_connections).
  std::optional<uint32_t> maxqueue;
  OnServerDown on_server_down = OnServerDown::None;
  bool forward_for = true;  // X-Forwarded-For / -Proto / -Port in http mode
  std::vector<Server> servers;
  std::vector<Route> routes;  // http mode only
  PassiveOptions passive;
  // Panic: when fewer than this percentage of the servers are up, route to all of them
  // rather than to the few (Envoy's healthy_panic_threshold). 0 = never.
  uint32_t panic_threshold_percent = 50;

  bool operator==(const Service&) const = default;
};

// ---- process-wide settings ------------------------------------------------------------

struct AdminOptions {
  std::string socket = "/run/hafront/hafrontd.sock";

  bool operator==(const AdminOptions&) const = default;
};

enum class LogLevel : uint8_t { Debug, Info, Warning, Error };

struct LoggingOptions {
  LogLevel level = LogLevel::Info;

  bool operator==(const LoggingOptions&) const = default;
};

// The data plane's I/O back-end: io_uring when the kernel has what it needs, or forced.
enum class IoBackendChoice : uint8_t { Auto, IoUring, Epoll };

struct ProxyOptions {
  uint32_t workers = 0;            // 0 = one per core
  uint64_t buffer_size = 64 * 1024;  // bench/duel: 16 KiB cost ~1.8x the CPU per GB
  uint64_t max_header_size = 32 * 1024;
  uint32_t max_connections = 100000;
  IoBackendChoice io_backend = IoBackendChoice::Auto;
  // One line per connection: empty = off, "stderr", or a file path (made absolute against
  // the config file's folder).
  std::string access_log;

  bool operator==(const ProxyOptions&) const = default;
};

// ---- alerts ---------------------------------------------------------------------------

// An HTTP POST of each alert as JSON (names are resolved when the alert is sent).
struct WebhookSink {
  std::string url;     // as written: http://HOST[:PORT]/PATH
  std::string host;    // parsed from url
  uint16_t port = 80;
  std::string target;  // the path and query, "/" at least
  Duration timeout{2000};

  bool operator==(const WebhookSink&) const = default;
};

// A command run per alert with the alert's JSON on its stdin; no shell.
struct ExecSink {
  std::vector<std::string> command;
  Duration timeout{5000};

  bool operator==(const ExecSink&) const = default;
};

struct AlertOptions {
  std::optional<WebhookSink> webhook;
  std::optional<ExecSink> exec;
  uint32_t max_per_minute = 20;  // per sink; the rest are summed up in one "N more" alert
  // A new problem waits this long before it is sent, so that what follows from it (a
  // dependent service going down a check later) is folded into one alert.
  Duration group_wait{3000};

  bool operator==(const AlertOptions&) const = default;
};

struct Config {
  std::string source_path;  // the file it was read from
  std::string sha256;       // hex digest of the file's bytes; nodes compare it
  Cluster cluster;
  std::map<std::string, FenceDevice> fence_devices;
  std::vector<Vip> vips;
  std::vector<Check> checks;
  std::vector<Service> services;
  AdminOptions admin;
  LoggingOptions logging;
  ProxyOptions proxy;
  AlertOptions alerts;

  const Node* find_node(std::string_view name) const;
  const Vip* find_vip(std::string_view name) const;
  const Check* find_check(std::string_view name) const;
  const Service* find_service(std::string_view name) const;
};

const char* to_string(ClusterMode);
const char* to_string(VipDriver);
const char* to_string(CheckKind);
const char* to_string(ServiceMode);
const char* to_string(Balance);
const char* to_string(OnServerDown);
const char* to_string(ProxyProtocol);
const char* to_string(LogLevel);
const char* to_string(IoBackendChoice);
const char* to_string(HealthGate);

}  // namespace hafront::config
