// One active health check of one server, run once: the interface between the checks
// (TCP, HTTP/HTTPS, MySQL/Galera, exec agent; src/health/probe_*.cc) and the monitor that
// schedules them, applies rise/fall and feeds the proxy and the cluster.
//
// A probe runs on the control thread's Asio loop and never blocks it: no thread and no fork
// per check (an exec check spawns its command, it does not fork the daemon's state). Every
// probe ends by calling its completion exactly once, within the check's timeout (plus a
// little for a child to die), with bounded memory whatever the target sends.
//
// What each kind asks (doc/configuration.md, `checks`):
//  - tcp: a connection is accepted.
//  - http/https: one request (`Connection: close`); the status is in expect_status and the
//    body, of which at most 64 KiB is read, passes expect_body / _regex / _json. https
//    verifies the certificate against the system CAs or ca_file unless verify is false.
//  - mysql: logs in (password read from its file now), reads the wsrep status and
//    @@read_only in one round of SHOW statements, and checks `require`.
//  - exec: runs the command (argv, no shell) with HAFRONT_SERVICE/_SERVER/_ADDRESS/_PORT in
//    its environment; exit 0 passes; with agent_output the first line's HAProxy agent words
//    are returned and down/fail/stopped fails it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>

#include "config/config_types.h"
#include "health/health_types.h"

namespace hafront::health {

// What a Galera node said about itself (MySQL check). A field the server did not report
// stays unset (a plain MariaDB without wsrep reports none of the wsrep_ ones).
struct GaleraView {
  std::optional<int> local_state;  // wsrep_local_state: 4 = Synced, 2 = Donor/Desynced, ...
  std::optional<std::string> local_state_comment;  // wsrep_local_state_comment
  std::optional<std::string> cluster_status;  // wsrep_cluster_status: Primary / non-Primary / Disconnected
  std::optional<bool> ready;                  // wsrep_ready
  std::optional<bool> desync;                 // wsrep_desync
  std::optional<uint64_t> last_committed;     // wsrep_last_committed
  std::optional<uint64_t> cluster_size;       // wsrep_cluster_size
  std::optional<bool> read_only;              // @@read_only

  // Galera's own notion of a node that may take writes: Synced (4), in the Primary
  // component, not desynced, and not read_only (a read_only node refuses the writes of
  // every ordinary user). Unset fields count as "no": a node that did not say it is not
  // desynced is not writable.
  bool writable() const;

  bool operator==(const GaleraView&) const = default;
};

// What an agent check's output asked for (HAProxy agent-check words). Unset: it said
// nothing about it.
struct AgentWords {
  std::optional<ServerState> state;       // up, down, drain, maint (ready = up)
  std::optional<uint32_t> weight_percent; // "75%"
  std::string message;                    // text after '#', if any

  bool operator==(const AgentWords&) const = default;
};

// How the probe ran, apart from what the target answered (the second axis of a result;
// doc/core-principles.md). A monitor may treat LocalError differently from a server that
// is down: every server fails alike when our own secret file is unreadable.
enum class ProbeRun : uint8_t {
  Answered,     // the target answered; `ok` says whether the answer passed
  Unreachable,  // no usable answer: refused, reset, closed early, TLS failure, garbage
  TimedOut,     // check.timeout ran out; the reason names the phase
  LocalError,   // our side failed: unreadable secret, cannot spawn, no sockets left
};
const char* to_string(ProbeRun);

// The outcome of one probe.
struct Observation {
  bool ok = false;
  ProbeRun run = ProbeRun::Answered;
  // Why it failed, or what it saw when it passed, in a few words an operator reads in
  // `hafrontctl status` and in alerts: "HTTP 503 from GET /v3", "connect refused",
  // "timed out after 500ms waiting for the response head",
  // "wsrep_local_state 2 (Donor/Desynced), need 4". One line, at most a few hundred bytes,
  // never a secret.
  std::string reason;
  // The evidence, kept small (for alerts): an HTTP status code, an excerpt of the body or of
  // an exec check's output (at most 256 bytes, printable ASCII), the wsrep view, an exit code.
  std::optional<uint16_t> http_status;
  std::string body_excerpt;
  std::optional<GaleraView> galera;
  std::optional<int> exit_code;
  std::optional<AgentWords> agent;
  std::chrono::milliseconds duration{0};
};

using ProbeDone = std::function<void(Observation)>;

// A running probe. Destroying it (or calling cancel()) abandons the check: the completion is
// not called afterwards, sockets close, a child is killed and reaped. Call both from the
// io_context's thread. After the completion ran, cancel() and destruction do nothing more.
class Probe {
 public:
  virtual ~Probe() = default;
  virtual void cancel() = 0;
};

// What a probe needs to know about its target.
struct ProbeTarget {
  std::string service;  // for messages and the exec environment only
  std::string server;
  config::Endpoint address;  // the server's address; check.port replaces the port
};

// Where a check of `target` connects: its address, with check.port when set.
config::Endpoint probe_endpoint(const config::Check& check, const ProbeTarget& target);

// Starts one check of `target` as `check` describes it. `done` is called once on the
// io_context's thread (never from inside start_probe()), unless the Probe is cancelled or
// destroyed first. `check` and `target` are copied: they need not outlive the call.
std::unique_ptr<Probe> start_probe(boost::asio::io_context& io, const config::Check& check, const ProbeTarget& target,
                                   ProbeDone done);

}  // namespace hafront::health
