// Plain types of the data plane's view of the world.
#pragma once

#include <cstdint>

namespace hafront::proxy {

// Which I/O back-end a worker runs, chosen by a kernel probe at start-up.
enum class IoBackend : uint8_t { IoUring, Epoll };

const char* to_string(IoBackend);

// The two ends of a relayed connection.
enum class Side : uint8_t { Client = 0, Server = 1 };

inline constexpr Side other(Side s) { return s == Side::Client ? Side::Server : Side::Client; }
const char* to_string(Side);

// What a worker saw about a server, reported to the control plane (passive health).
enum class PassiveEventKind : uint8_t {
  ConnectRefused,  // the server answered the SYN with a reset: nothing listens there
  ConnectTimeout,  // no answer within timeouts.connect
  ConnectError,    // any other connect failure (unreachable, no route, ...)
  Reset,           // an established connection was reset by the server
  Http5xx,         // http mode: the server answered a request with a 5xx status
};
inline constexpr int kPassiveEventKinds = 5;

const char* to_string(PassiveEventKind);

// One passive health event. server_id names the server for the data plane's lifetime
// (DataPlane::server_name()); error is the errno seen, 0 for time-outs.
struct PassiveEvent {
  uint32_t server_id = 0;
  PassiveEventKind kind = PassiveEventKind::ConnectRefused;
  int32_t error = 0;
};

// How a connection (tcp mode) or a request (http mode) ended, as HAProxy's two-letter
// termination state: who ended it, and in which phase. "--" is a normal end.
enum class EndCause : uint8_t {
  Normal,         // '-'
  ClientAbort,    // 'C': the client reset or broke the connection
  ServerAbort,    // 'S': the server refused, reset or broke it; or no server could take it
  ClientTimeout,  // 'c': timeouts.client (or timeouts.idle, blamed on the quieter side)
  ServerTimeout,  // 's': timeouts.server, connect, queue (or idle on the server's side)
  Proxy,          // 'P': hafront itself (out of sockets or memory; http: it refused a malformed
                  //      request or response)
  Killed,         // 'K': the data plane stopped
};

enum class EndPhase : uint8_t {
  None,        // '-': normal end
  Queue,       // 'Q': waiting in the queue for a server slot
  Connect,     // 'C': connecting to a server
  Data,        // 'D': relaying
  Request,     // 'R': http: waiting for the client's request head
  Header,      // 'H': http: waiting for the server's response head
};

char code(EndCause);
char code(EndPhase);

// Errors counted per service and server (status "errors").
enum class ErrorKind : uint8_t {
  NoServer,        // no server could take the connection
  QueueFull,       // every server at maxconn and the queue full (or queueing off)
  QueueTimeout,    // waited timeouts.queue for a slot
  ConnectRefused,  // one failed attempt (a connection may count several with retries)
  ConnectTimeout,
  ConnectError,
  ClientTimeout,
  ServerTimeout,
  IdleTimeout,
  ClientReset,     // the client broke the connection (reset, send error)
  ServerReset,     // the server broke an established connection
  Rejected,        // proxy.max_connections reached: closed at accept
  ProxyError,      // hafront could not make a socket or similar
  // http mode
  BadRequest,      // the client's request was refused by the parser (400, 414, 431, ...)
  RequestTimeout,  // no complete request head within timeouts.http_request (408)
  BadResponse,     // the server's response head or body framing was invalid (502)
};
inline constexpr int kErrorKinds = 16;

const char* to_string(ErrorKind);

}  // namespace hafront::proxy
