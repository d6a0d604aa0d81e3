// One client connection in http mode as a state machine: read a request head, route it,
// pick a server (queue, retries), take a pooled server connection or open one, forward the
// request with its body, relay the response (1xx, HEAD/204/304, Content-Length, chunked,
// read-until-close; 101 turns the connection into a byte tunnel), then either wait for the
// next request (keep-alive; pipelined requests one at a time, in order) or close.
//
// Like TcpSession it does no I/O and reads no clock: the worker feeds it completions,
// time-outs and queue hand-offs with the current time, and carries out the actions it
// answers (receive, send these bytes, connect to server s of backend b, put the server
// connection back in the pool, ...). Unit tests drive it with fake completions
// (tests/unit/proxy/http_session_test.cc). It never throws. It allocates only when one of
// its buffers must grow past its largest size so far (heads spanning several receives, a
// head built bigger than any before), so a connection that keeps sending similar requests
// allocates nothing per request.
//
// Buffers. Received bytes stay in the back-end's receive buffer and heads are parsed there
// in place; only a head that spans several receives is gathered in a buffer of the
// session's. The outgoing request head is built into `out_` together with whatever body
// bytes came with the head, and sent in one go. The rewritten response head goes back into
// the receive buffer, just before the body bytes that followed it, when it is not longer
// than the original (the usual case: hop-by-hop fields go), so head and first body bytes
// leave in one send without copying the body; otherwise both are copied into `resp_out_`.
// Body bytes after that are sent from the receive buffers as they arrive. Each side holds
// at most one receive buffer: a side is read again only once its bytes are through (or, for
// a pipelined request, once the current response is done), so a slow peer slows the other
// instead of filling memory.
//
// Server connections. After a complete response on a connection both ends may reuse, the
// session parks it (ParkServer: the worker's pool, keyed by server); the next request, of
// this client or another, takes an idle one of the server the balancer picks (Connect with
// reuse). A pooled connection keeps a receive armed, so one the server closes is dropped
// from the pool; the session that takes it gets that receive (on_connect's recv_armed).
// The balancer's per-server count is a count of requests in flight (maxconn bounds them).
//
// Retries. A failed connect is retried like tcp mode (`retries`, `redispatch`); the request
// is still all in `out_` then. An idempotent request whose connection fails before any
// response byte is sent once more on a new connection: a reused one was most likely closed
// by the server as it was taken (HAProxy retries those too), a new one means the server
// failed and another server gets it (HAProxy's `retry-on empty-response`). Killing a backend
// stays invisible to GET clients that way. A
// non-idempotent request is never retried once sent, and the first request of a client
// connection never takes a pooled connection unless it is idempotent (HAProxy's
// `http-reuse safe`).
//
// Errors answered by the session itself, always small, with Content-Length and
// `Connection: close`: what the parser refuses (400, 414, 417, 431, 501, 505), 408 (no
// complete request head within timeouts.http_request), 502 (the server broke the connection
// or sent an invalid head), 503 (no server, queue full or timed out, every connect failed),
// 504 (timeouts.server passed before the first response byte). Once bytes of the final
// response went to the client, an error closes the connection instead. After an error the
// client side is shut down for writing and read until it closes (at most kLingerTime), so
// the error is not lost to a reset caused by unread request bytes.
//
// Time-outs: http_request bounds the time from the first byte of a request (or from accept,
// for the first request) to its complete head; keep_alive the wait for the first byte of a
// next request (0: http_request); queue and connect as in tcp mode; server: nothing received
// from or sent to the server for that long while a response is expected; client: nothing
// received from or sent to the client for that long while the request body or the response
// moves; a tunnel uses idle when set, else client and server. deadline() says when the next
// one can fire; on_timer() checks, so the worker may call it early or late.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <type_traits>
#include <string_view>

#include "proxy/balance.h"
#include "proxy/http1.h"
#include "proxy/io_backend.h"
#include "proxy/proxy_protocol.h"
#include "proxy/proxy_types.h"

namespace hafront::proxy {

// The client side's options: the listening service's time-outs and the parser's limits.
struct HttpFrontOptions {
  std::chrono::milliseconds http_request{10000};
  std::chrono::milliseconds keep_alive{60000};  // 0: http_request
  std::chrono::milliseconds client{60000};
  std::chrono::milliseconds tunnel_idle{0};  // timeouts.idle: tunnels only; 0: client/server
  http1::Limits limits;
};

// The server side's options: those of the service whose servers answer the request (the
// listening service, or the one its route leads to).
struct HttpBackendOptions {
  std::chrono::milliseconds connect{5000};
  std::chrono::milliseconds queue{5000};
  std::chrono::milliseconds server{60000};
  uint32_t retries = 3;
  bool redispatch = true;
  bool forward_for = true;
};

// A pool a request can be sent to.
struct HttpBackend {
  Balancer* balancer = nullptr;
  HttpBackendOptions options;
  uint32_t id = 0;  // the router's name for it; actions and summaries carry it
};

// Chooses the backend of a request (routes by Host and path, else the listening service's
// own servers). nullptr: nowhere to send it (503).
class HttpRouter {
 public:
  virtual ~HttpRouter() = default;
  virtual const HttpBackend* route(std::string_view host, std::string_view path) noexcept = 0;
};

// Who the client is, for X-Forwarded-* and `balance: source`.
struct HttpClient {
  std::array<char, 46> address{};  // text, as in X-Forwarded-For
  uint8_t address_len = 0;
  uint16_t local_port = 0;         // X-Forwarded-Port
  std::optional<uint64_t> hash;    // hash_address() of the client

  void set_address(std::string_view text) noexcept;
  std::string_view address_text() const noexcept { return {address.data(), address_len}; }
};

// A growable byte buffer that keeps its capacity: reused request after request.
class ByteBuf {
 public:
  uint8_t* data() noexcept { return data_.get(); }
  const uint8_t* data() const noexcept { return data_.get(); }
  uint32_t size() const noexcept { return size_; }
  uint32_t capacity() const noexcept { return capacity_; }
  bool empty() const noexcept { return size_ == 0; }
  std::string_view view() const noexcept { return {reinterpret_cast<const char*>(data_.get()), size_}; }
  void clear() noexcept { size_ = 0; }
  // Frees the memory when it is larger than `keep` bytes (an idle connection holds little).
  void trim(uint32_t keep) noexcept;
  // False only when memory is exhausted (nothing is appended then).
  bool append(const void* bytes, size_t n) noexcept;
  bool append(std::string_view s) noexcept { return append(s.data(), s.size()); }
  bool append_number(uint64_t v) noexcept;

 private:
  bool reserve(size_t n) noexcept;
  std::unique_ptr<uint8_t[]> data_;
  uint32_t size_ = 0;
  uint32_t capacity_ = 0;
};

struct HttpAction {
  enum class Kind : uint8_t {
    Recv,           // receive on `side`
    Send,           // send data[0..len) on `side`
    Release,        // give `buffer` back to the back-end
    ShutdownWrite,  // shutdown(SHUT_WR) on `side`
    Connect,        // a connection to `server` of `backend` (attempt `attempt`): with `reuse`, an
                    // idle one from the pool if there is one; else a new one. on_connect() follows
    CancelConnect,  // the connect timed out: cancel it (on_connect follows)
    DropServer,     // close the server connection: not reusable (its completions are stale)
    ParkServer,     // the server connection is idle and reusable: into the pool
    Report,         // passive health event `event` (errno `error`) about `server` of `backend`
    Connected,      // a new connection to `server` of `backend` succeeded (connect_time is set)
    Handoff,        // a queued request of `backend` gets a slot: `handoff`
    RequestDone,    // the actions' done(len) is a request that ended: count it and log it
    Finish,         // close the client connection (and the server's, if any): the session is over
  };
  Kind kind = Kind::Finish;
  Side side = Side::Client;
  bool reuse = false;
  uint8_t attempt = 0;
  uint32_t backend = 0;
  ServerIndex server = 0;
  const uint8_t* data = nullptr;
  uint32_t len = 0;
  PassiveEventKind event = PassiveEventKind::ConnectRefused;
  int32_t error = 0;
  IoBuffer buffer;
  Handoff handoff;
};

// What the access log and the counters need about one request (RequestDone).
struct HttpRequestSummary {
  static constexpr size_t kLineMax = 240;

  std::optional<uint32_t> backend;
  std::optional<ServerIndex> server;  // the last server tried
  uint16_t status = 0;                // the final status sent to the client; 0: none
  uint32_t failed_connects = 0;
  bool reused = false;                // sent on a pooled connection
  bool retried = false;               // sent again on a new connection after a reused one failed
  uint64_t bytes_from_client = 0;     // request head and body
  uint64_t bytes_to_client = 0;       // response(s), interim ones included
  SteadyTime started{};               // the request's first byte (accept for a first request with none)
  std::optional<std::chrono::nanoseconds> request_time;   // TR: to the complete head
  std::optional<std::chrono::nanoseconds> queue_time;     // Tw
  std::optional<std::chrono::nanoseconds> connect_time;   // Tc: the new connection that served
  std::optional<std::chrono::nanoseconds> response_time;  // Tr: request head sent to first response byte
  std::chrono::nanoseconds total_time{0};                 // Ta: started to the end of the response
  EndCause cause = EndCause::Normal;
  EndPhase phase = EndPhase::None;
  std::optional<ErrorKind> error;
  // "METHOD TARGET VERSION", cut to kLineMax bytes; "<BADREQ>" when the head did not parse.
  std::array<char, kLineMax> line{};
  uint16_t line_len = 0;

  std::string_view request_line() const noexcept { return {line.data(), line_len}; }
};

// The actions of one step, in order. A step never emits more than kCapacity actions, nor
// more than kDoneCapacity ended requests (a pipelined request can end in the step that
// ended the one before it); RequestDone names one of them by its `len`.
class HttpActions {
 public:
  static constexpr size_t kCapacity = 24;
  static constexpr size_t kDoneCapacity = 2;
  void push(const HttpAction& a) noexcept;
  // Keeps a copy of an ended request; returns its number for RequestDone.
  uint32_t add_done(const HttpRequestSummary& summary) noexcept;
  const HttpRequestSummary& done(uint32_t i) const noexcept {
    return std::launder(reinterpret_cast<const HttpRequestSummary*>(done_))[i % kDoneCapacity];
  }
  const HttpAction* begin() const noexcept { return std::launder(reinterpret_cast<const HttpAction*>(items_)); }
  const HttpAction* end() const noexcept { return begin() + n_; }
  size_t size() const noexcept { return n_; }
  const HttpAction& operator[](size_t i) const noexcept { return begin()[i]; }
  void clear() noexcept { n_ = n_done_ = 0; }

 private:
  // Raw storage: one is made per step, and filling 2 KiB of defaults each time would cost
  // more than the step's own work. Only what was pushed is ever read.
  static_assert(std::is_trivially_copyable_v<HttpAction> && std::is_trivially_destructible_v<HttpAction>);
  static_assert(std::is_trivially_copyable_v<HttpRequestSummary> &&
                std::is_trivially_destructible_v<HttpRequestSummary>);
  alignas(HttpAction) unsigned char items_[kCapacity * sizeof(HttpAction)];
  size_t n_ = 0;
  alignas(HttpRequestSummary) unsigned char done_[kDoneCapacity * sizeof(HttpRequestSummary)];
  size_t n_done_ = 0;
};

class HttpSession {
 public:
  enum class Phase : uint8_t {
    WaitRequest,  // reading a request head (or idle between requests)
    Queued,       // every server at maxconn: waiting for a slot
    Connecting,   // a new connection is being made (or a pooled one handed over)
    Exchange,     // request and response in flight
    Tunnel,       // after 101 (or a 2xx to CONNECT): bytes both ways
    Closing,      // an error answer is out: reading the client until it closes
    Finished,
  };

  // How long the client is read after an error answer at most.
  static constexpr std::chrono::milliseconds kLingerTime{2000};

  // `router` and every balancer it hands out must outlive the session. `cookie` is what
  // the balancers hand back for it in a Handoff.
  HttpSession(HttpRouter& router, const HttpFrontOptions& options, const HttpClient& client, uint64_t cookie) noexcept;
  ~HttpSession();
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;

  // Makes the session new for another client connection, keeping its buffers' memory
  // (call only once take_buffers() emptied it).
  void reset(HttpRouter& router, const HttpFrontOptions& options, const HttpClient& client, uint64_t cookie) noexcept;

  // A reload, between two requests (between_requests()): the next request is routed with
  // `router` and read with `options`.
  void rebind(HttpRouter& router, const HttpFrontOptions& options) noexcept;

  // The client was accepted: read it.
  void start(SteadyTime now, HttpActions& out) noexcept;
  // The PROXY protocol header to send on the new server connection before the request;
  // empty for none. Call when carrying out a Connect that opens a new connection.
  void set_proxy_header(std::span<const uint8_t> header) noexcept;
  // A receive on `side` completed: result bytes (> 0) in `buffer`, 0 for end of stream,
  // < 0 for -errno. The session owns `buffer` from here on.
  void on_recv(Side side, int32_t result, IoBuffer buffer, SteadyTime now, HttpActions& out) noexcept;
  void on_send(Side side, int32_t result, SteadyTime now, HttpActions& out) noexcept;
  // The Connect finished. `reused`: a pooled connection was handed over (result 0); then
  // `recv_armed` says it already has a receive pending, whose completion comes as on_recv.
  void on_connect(int32_t result, bool reused, bool recv_armed, SteadyTime now, HttpActions& out) noexcept;
  // A queued request got `server` (a Handoff of its backend's balancer).
  void on_dispatch(ServerIndex server, SteadyTime now, HttpActions& out) noexcept;
  void on_timer(SteadyTime now, HttpActions& out) noexcept;
  // Ends the session now (the data plane stops).
  void kill(SteadyTime now, HttpActions& out) noexcept;

  std::optional<SteadyTime> deadline() const noexcept;
  Phase phase() const noexcept { return phase_; }
  bool finished() const noexcept { return phase_ == Phase::Finished; }
  // No request is under way: the worker may switch the router (a reload) before the next.
  bool between_requests() const noexcept;
  // The balancer a queued request waits in.
  const Balancer* queued_on() const noexcept { return phase_ == Phase::Queued ? backend_->balancer : nullptr; }
  // The request in progress.
  const HttpRequestSummary& request() const noexcept { return summary_; }
  uint64_t requests() const noexcept { return requests_; }
  // The server connection in use or being made (for counters); nullopt when none.
  std::optional<ServerIndex> server() const noexcept {
    return server_attached_ ? summary_.server : std::nullopt;
  }
  std::optional<uint32_t> backend_id() const noexcept {
    return backend_ ? std::optional<uint32_t>(backend_->id) : std::nullopt;
  }

  // Buffers the session still holds, to release once no operation can touch them (after
  // the last completion of a finished session). Leaves the session holding none.
  template <typename F>
  void take_buffers(F&& release) noexcept {
    for (Held* h : {&client_in_, &server_in_}) {
      if (h->buffer.valid()) release(h->buffer);
      *h = {};
    }
  }

 private:
  // Received bytes held for processing: buffer[off, len).
  struct Held {
    IoBuffer buffer;
    uint32_t off = 0;
    uint32_t len = 0;
    uint32_t available() const noexcept { return len - off; }
    const uint8_t* at() const noexcept { return buffer.data + off; }
  };
  // What a pending send carries, and what to do when it is through.
  enum class SendWhat : uint8_t {
    None,
    ProxyHeader,   // the PROXY protocol header, first on a new connection
    RequestHead,   // out_: the request head and the body bytes that came with it
    RequestBody,   // client_in_: body bytes (or tunnel bytes)
    Interim,       // a 1xx response head
    ResponseHead,  // the final response head and the body bytes with it
    ResponseBody,  // server_in_: body bytes (or tunnel bytes)
    Error,         // a static error answer
  };
  struct Sending {
    SendWhat what = SendWhat::None;
    const uint8_t* data = nullptr;
    uint32_t len = 0;
    uint32_t sent = 0;
    uint32_t consume = 0;  // bytes of the held receive buffer the send covers
    bool pending() const noexcept { return what != SendWhat::None; }
  };
  enum class Up : uint8_t { Head, Body, Done };
  enum class Down : uint8_t { Head, Body, Done };

  // -- request side
  void read_client(HttpActions& out) noexcept;
  void process_client(SteadyTime now, HttpActions& out) noexcept;
  void parse_request(SteadyTime now, HttpActions& out) noexcept;
  bool build_request_head(const http1::RequestHead& h) noexcept;
  void request_parsed(uint32_t head_end_in_buffer, SteadyTime now, HttpActions& out) noexcept;
  void choose_server(SteadyTime now, HttpActions& out) noexcept;
  void connect_to(ServerIndex server, SteadyTime now, HttpActions& out) noexcept;
  void connect_failed(PassiveEventKind kind, int32_t error, SteadyTime now, HttpActions& out) noexcept;
  void send_request_head(SteadyTime now, HttpActions& out) noexcept;
  void pump_up(SteadyTime now, HttpActions& out) noexcept;
  // -- response side
  void read_server(HttpActions& out) noexcept;
  void pump_down(SteadyTime now, HttpActions& out) noexcept;
  void parse_response(SteadyTime now, HttpActions& out) noexcept;
  void response_parsed(std::string_view head_bytes, bool in_place, uint32_t body_start, SteadyTime now,
                       HttpActions& out) noexcept;
  bool build_response_head(const http1::ResponseHead& h, bool interim) noexcept;
  uint32_t body_bytes(http1::BodyReader& reader, const uint8_t* data, uint32_t n, bool& done, bool& bad) noexcept;
  void server_closed(int32_t error, SteadyTime now, HttpActions& out) noexcept;
  bool may_retry_fresh() const noexcept;
  void retry_fresh(SteadyTime now, HttpActions& out) noexcept;
  // -- both
  void send(Side side, SendWhat what, const uint8_t* data, uint32_t len, uint32_t consume, HttpActions& out) noexcept;
  void consume(Held& h, uint32_t n, HttpActions& out) noexcept;
  void release(Held& h, HttpActions& out) noexcept;
  void maybe_request_done(SteadyTime now, HttpActions& out) noexcept;
  void request_done(SteadyTime now, HttpActions& out) noexcept;
  void end_request(EndCause cause, EndPhase phase, std::optional<ErrorKind> error, SteadyTime now,
                   HttpActions& out) noexcept;
  void release_slot(SteadyTime now, HttpActions& out) noexcept;
  void drop_server(HttpActions& out) noexcept;
  void fail(int status, EndCause cause, EndPhase phase, std::optional<ErrorKind> error, SteadyTime now,
            HttpActions& out) noexcept;
  void report(PassiveEventKind kind, int32_t error, HttpActions& out) noexcept;
  void client_broken(int32_t error, SteadyTime now, HttpActions& out) noexcept;
  void server_broken(int32_t error, SteadyTime now, HttpActions& out) noexcept;
  void start_tunnel(SteadyTime now, HttpActions& out) noexcept;
  void pump_tunnel(SteadyTime now, HttpActions& out) noexcept;
  void finish(EndCause cause, EndPhase phase, std::optional<ErrorKind> error, SteadyTime now,
              HttpActions& out) noexcept;
  EndPhase current_phase() const noexcept;
  void set_line(const http1::RequestHead& h) noexcept;
  void next_request(SteadyTime now, HttpActions& out) noexcept;

  HttpRouter* router_;
  const HttpFrontOptions* options_;
  HttpClient client_;
  uint64_t cookie_ = 0;
  Phase phase_ = Phase::WaitRequest;
  uint64_t requests_ = 0;  // request heads parsed on this connection

  // client side
  Held client_in_;
  bool client_recv_ = false;  // a receive is pending
  bool client_eof_ = false;
  bool client_shut_ = false;  // we shut down writing towards the client
  Sending to_client_;
  ByteBuf head_acc_;  // a request head spanning receives
  http1::RequestParser req_parser_;
  http1::RequestHead req_;
  bool request_active_ = false;  // bytes of a request arrived (a summary is being made)
  bool keep_client_ = true;      // the client connection may carry another request
  bool linger_ = false;          // close through Closing rather than at once

  // the request
  const HttpBackend* backend_ = nullptr;
  http1::Method method_ = http1::Method::Get;
  bool expect_continue_ = false;
  bool continue_sent_ = false;     // a 100 went to the client
  bool upgrade_ = false;
  bool client_http10_ = false;
  http1::BodyReader req_body_;
  Up up_ = Up::Head;
  bool body_in_out_ = true;        // every request byte sent so far is in out_ (retry possible)
  ByteBuf out_;
  TriedSet tried_;
  QueueTicket ticket_;
  bool holds_slot_ = false;
  bool server_attached_ = false;   // a server connection (or connect) belongs to the request
  bool connect_cancelled_ = false;
  bool reused_ = false;
  uint8_t attempt_ = 0;
  // Only for servers that want one (allocated the first time): most connections never do.
  std::unique_ptr<std::array<uint8_t, kMaxProxyHeader>> proxy_header_;
  uint32_t proxy_header_len_ = 0;

  // server side
  Held server_in_;
  bool server_recv_ = false;
  Sending to_server_;
  ByteBuf resp_acc_;  // a response head spanning receives
  ByteBuf resp_out_;  // a response head that did not fit in place, with its first body bytes
  http1::ResponseParser resp_parser_;
  http1::ResponseHead resp_;
  http1::BodyReader resp_body_;
  Down down_ = Down::Head;
  bool response_byte_ = false;   // a byte of a response arrived on this connection
  bool final_sent_ = false;      // bytes of the final response went to the client
  bool keep_server_ = true;
  bool server_eof_ = false;      // tunnel: the server shut down its writing
  bool tunnel_server_shut_ = false;

  // times
  SteadyTime accepted_{};
  SteadyTime idle_since_{};
  SteadyTime queued_at_{};
  SteadyTime connect_started_{};
  SteadyTime request_sent_at_{};
  SteadyTime closing_at_{};
  SteadyTime client_last_{};
  SteadyTime server_last_{};

  HttpRequestSummary summary_;
};

// The static error answers (status line, Content-Length, Connection: close, a short body).
std::string_view http_error_response(int status) noexcept;

// RFC 9110 9.2.2.
bool is_idempotent(http1::Method m) noexcept;

}  // namespace hafront::proxy
