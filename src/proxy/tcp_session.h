// One proxied TCP connection as a state machine: accept → pick a server (queue, retries) →
// connect → optional PROXY header → relay both ways with half-close → end.
//
// The machine does no I/O and reads no clock. The worker feeds it events (an operation
// completed, a timer fired, a queued connection got a server) with the current time, and
// it answers with actions for the worker to carry out (receive on a side, send these bytes,
// shut down writing, connect to server i, ...). Unit tests drive it with fake completions.
// It never throws, and allocates only through the Balancer's queue when that grows past
// its largest size so far.
//
// Relay and backpressure: each direction holds at most one chunk (one receive buffer). A
// side is read again only once the chunk read from it has been sent on in full, so a slow
// reader stops its peer from being read and memory stays at two buffers per connection.
// Client bytes that arrive while the server connects wait in their chunk.
//
// Retries: a failed connect is retried up to `retries` times, on a server not tried yet when
// `redispatch` is on (on the same one otherwise); once every candidate failed, the tried
// ones are candidates again.
//
// Half-close: when a side shuts down its writing (a receive of 0 bytes), the other side's
// writing is shut down as soon as the data before it has been sent; the connection ends
// when both directions are shut. An error on either side ends it at once.
//
// Time-outs (service `timeouts`): connect (per attempt), queue, and in the relay either
// idle (no byte moved either way; takes over from client and server when set, like
// HAProxy's `timeout tunnel`) or client / server (no byte received from or sent to that
// side). A time-out of 0 is off. deadline() says when the next one can fire; on_timer()
// checks it, so the worker may call it early or late.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>

#include "proxy/balance.h"
#include "proxy/io_backend.h"
#include "proxy/proxy_protocol.h"
#include "proxy/proxy_types.h"

namespace hafront::proxy {

struct SessionTimeouts {
  std::chrono::milliseconds connect{5000};
  std::chrono::milliseconds queue{5000};
  std::chrono::milliseconds client{60000};
  std::chrono::milliseconds server{60000};
  std::chrono::milliseconds idle{0};
};

struct SessionOptions {
  SessionTimeouts timeouts;
  uint32_t retries = 3;
  bool redispatch = true;
};

struct SessionAction {
  enum class Kind : uint8_t {
    Recv,           // receive on `side`
    Send,           // send data[0..len) on `side`
    Release,        // give `buffer` back to the back-end: its bytes are through
    ShutdownWrite,  // shutdown(SHUT_WR) on `side`
    Connect,        // open a socket to `server`, call set_proxy_header(), connect
    CancelConnect,  // the connect timed out: cancel it (on_connect follows)
    DropServer,     // close the socket of the failed attempt
    Report,         // passive health event `event` (errno `error`) about `server`
    Connected,      // the connect to `server` succeeded (connect_time() is set)
    Handoff,        // a queued connection of the same balancer gets a slot: `handoff`
    Finish,         // close both sockets: the session is over (summary() is final)
  };
  Kind kind = Kind::Finish;
  Side side = Side::Client;
  ServerIndex server = 0;
  const uint8_t* data = nullptr;
  uint32_t len = 0;
  PassiveEventKind event = PassiveEventKind::ConnectRefused;
  int32_t error = 0;
  IoBuffer buffer;
  Handoff handoff;
};

// The actions of one step, in order. Fixed capacity: a step never emits more than 8.
class SessionActions {
 public:
  static constexpr size_t kCapacity = 8;
  void push(const SessionAction& a) noexcept;
  const SessionAction* begin() const noexcept { return items_.data(); }
  const SessionAction* end() const noexcept { return items_.data() + n_; }
  size_t size() const noexcept { return n_; }
  const SessionAction& operator[](size_t i) const noexcept { return items_[i]; }
  void clear() noexcept { n_ = 0; }

 private:
  std::array<SessionAction, kCapacity> items_{};
  size_t n_ = 0;
};

// What the access log and the counters need once a session is over.
struct SessionSummary {
  std::optional<ServerIndex> server;  // the last server tried
  uint32_t failed_connects = 0;       // connect attempts that failed (retries taken = this, or one less)
  uint64_t bytes_from_client = 0;
  uint64_t bytes_to_client = 0;
  std::optional<std::chrono::nanoseconds> queue_time;    // Tw: while queued
  std::optional<std::chrono::nanoseconds> connect_time;  // Tc: the successful attempt
  std::chrono::nanoseconds total_time{0};                // Tt: accept to end
  EndCause cause = EndCause::Normal;
  EndPhase phase = EndPhase::None;
  std::optional<ErrorKind> error;  // what to count, if the end was an error of its own
};

class TcpSession {
 public:
  enum class Phase : uint8_t { Idle, Queued, Connecting, Relaying, Finished };

  // `balancer` must outlive the session. `cookie` is what the balancer hands back for it in a
  // Handoff; `hash` is the client's address hash for `balance: source`.
  TcpSession(Balancer& balancer, const SessionOptions& options, uint64_t cookie,
             std::optional<uint64_t> hash = std::nullopt) noexcept;

  // The client was accepted: read it, and pick a server.
  void start(SteadyTime now, SessionActions& out) noexcept;
  // A receive on `side` completed: result bytes (> 0) in `buffer`, 0 for end of stream,
  // < 0 for -errno. The session owns `buffer` from here on (see take_buffers()).
  void on_recv(Side side, int32_t result, IoBuffer buffer, SteadyTime now, SessionActions& out) noexcept;
  void on_send(Side side, int32_t result, SteadyTime now, SessionActions& out) noexcept;
  void on_connect(int32_t result, SteadyTime now, SessionActions& out) noexcept;
  // A queued session got `server` (a Handoff of the balancer).
  void on_dispatch(ServerIndex server, SteadyTime now, SessionActions& out) noexcept;
  void on_timer(SteadyTime now, SessionActions& out) noexcept;
  // Ends the session now (the data plane stops, or its server's sessions are closed).
  void kill(SteadyTime now, SessionActions& out) noexcept;

  // The header to send to the server before any client byte (PROXY protocol); empty for
  // none. Call when carrying out Connect.
  void set_proxy_header(std::span<const uint8_t> header) noexcept;

  std::optional<SteadyTime> deadline() const noexcept;
  Phase phase() const noexcept { return phase_; }
  bool finished() const noexcept { return phase_ == Phase::Finished; }
  const SessionSummary& summary() const noexcept { return summary_; }
  std::optional<ServerIndex> server() const noexcept { return summary_.server; }
  Balancer& balancer() const noexcept { return balancer_; }

  // Buffers the session still holds, to release once no operation can touch them (after
  // the last completion of a finished session). Leaves the session holding none.
  template <typename F>
  void take_buffers(F&& release) noexcept {
    for (Direction* d : {&up_, &down_}) {
      if (d->buffer.valid()) release(d->buffer);
      d->buffer = {};
      d->len = d->sent = 0;
    }
  }

 private:
  // Bytes flowing from one side to the other: the chunk being forwarded and the state of
  // both ends of this direction.
  struct Direction {
    IoBuffer buffer;
    uint32_t len = 0;
    uint32_t sent = 0;
    bool eof = false;   // the sending side shut down its writing
    bool shut = false;  // we shut down writing on the receiving side
  };

  Direction& from(Side s) noexcept { return s == Side::Client ? up_ : down_; }
  bool server_writable() const noexcept { return phase_ == Phase::Relaying && header_sent_ == header_len_; }
  void choose_server(SteadyTime now, SessionActions& out) noexcept;
  void connect_to(ServerIndex server, SteadyTime now, SessionActions& out) noexcept;
  void connect_failed(PassiveEventKind kind, int32_t error, SteadyTime now, SessionActions& out) noexcept;
  void flush_to_server(SteadyTime now, SessionActions& out) noexcept;
  void forward(Side to, SessionActions& out) noexcept;
  void release_slot(SteadyTime now, SessionActions& out) noexcept;
  void broken(Side side, int32_t error, SteadyTime now, SessionActions& out) noexcept;
  void maybe_done(SteadyTime now, SessionActions& out) noexcept;
  void finish(EndCause cause, EndPhase phase, std::optional<ErrorKind> error, SteadyTime now,
              SessionActions& out) noexcept;
  EndPhase current_phase() const noexcept;

  Balancer& balancer_;
  SessionOptions options_;
  uint64_t cookie_;
  std::optional<uint64_t> hash_;
  Phase phase_ = Phase::Idle;
  TriedSet tried_;
  QueueTicket ticket_;
  bool holds_slot_ = false;        // on_connect_start() was called for summary_.server
  bool connect_cancelled_ = false;  // the connect timed out and its cancel is on the way
  SteadyTime accepted_{};
  SteadyTime queued_at_{};
  SteadyTime connect_started_{};
  std::array<SteadyTime, 2> last_activity_{};  // by Side
  Direction up_;    // client -> server
  Direction down_;  // server -> client
  std::array<uint8_t, kMaxProxyHeader> header_{};
  uint32_t header_len_ = 0;
  uint32_t header_sent_ = 0;
  SessionSummary summary_;
};

}  // namespace hafront::proxy
