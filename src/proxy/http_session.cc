#include "proxy/http_session.h"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <new>
#include <string>

#include "proxy/session_util.h"

namespace hafront::proxy {

using http1::Framing;
using http1::FieldId;
using http1::Method;
using http1::ParseStatus;
using http1::Version;

// ---- small pieces -------------------------------------------------------------------------

void HttpActions::push(const HttpAction& a) noexcept {
  assert(n_ < kCapacity && "an http session step emitted more actions than HttpActions holds");
  if (n_ < kCapacity) new (items_ + n_++ * sizeof(HttpAction)) HttpAction(a);
}

uint32_t HttpActions::add_done(const HttpRequestSummary& summary) noexcept {
  assert(n_done_ < kDoneCapacity && "an http session step ended more requests than HttpActions holds");
  const size_t i = std::min(n_done_, kDoneCapacity - 1);
  new (done_ + i * sizeof(HttpRequestSummary)) HttpRequestSummary(summary);
  if (n_done_ < kDoneCapacity) ++n_done_;
  return static_cast<uint32_t>(i);
}

void HttpClient::set_address(std::string_view text) noexcept {
  address_len = static_cast<uint8_t>(std::min(text.size(), address.size()));
  std::memcpy(address.data(), text.data(), address_len);
}

bool ByteBuf::reserve(size_t n) noexcept {
  if (n <= capacity_) return true;
  if (n > UINT32_MAX / 2) return false;
  size_t cap = std::max<size_t>({n, size_t{capacity_} * 2, 256});
  auto* p = new (std::nothrow) uint8_t[cap];
  if (!p) return false;
  if (size_ > 0) std::memcpy(p, data_.get(), size_);
  data_.reset(p);
  capacity_ = static_cast<uint32_t>(cap);
  return true;
}

void ByteBuf::trim(uint32_t keep) noexcept {
  if (capacity_ <= keep || size_ > 0) return;
  data_.reset();
  capacity_ = 0;
}

bool ByteBuf::append(const void* bytes, size_t n) noexcept {
  if (n == 0) return true;
  if (!reserve(size_t{size_} + n)) return false;
  std::memcpy(data_.get() + size_, bytes, n);
  size_ += static_cast<uint32_t>(n);
  return true;
}

bool ByteBuf::append_number(uint64_t v) noexcept {
  char text[24];
  auto r = std::to_chars(text, text + sizeof text, v);
  return append(text, static_cast<size_t>(r.ptr - text));
}

bool is_idempotent(Method m) noexcept {
  switch (m) {
    case Method::Get:
    case Method::Head:
    case Method::Put:
    case Method::Delete:
    case Method::Options:
    case Method::Trace:
      return true;
    default:
      return false;
  }
}

namespace {

struct ErrorText {
  int status;
  const char* reason;
  const char* body;
};

// HAProxy's wording, which operators know from their logs and browsers.
constexpr ErrorText kErrors[] = {
    {400, "Bad Request", "Your browser sent an invalid request."},
    {408, "Request Time-out", "Your browser didn't send a complete request in time."},
    {414, "URI Too Long", "The request target is too long."},
    {417, "Expectation Failed", "The expectation in the request cannot be met."},
    {431, "Request Header Fields Too Large", "The request header section is too large."},
    {501, "Not Implemented", "The request uses a transfer coding the server does not implement."},
    {502, "Bad Gateway", "The server returned an invalid or incomplete response."},
    {503, "Service Unavailable", "No server is available to handle this request."},
    {504, "Gateway Time-out", "The server didn't respond in time."},
    {505, "HTTP Version Not Supported", "The HTTP version of the request is not supported."},
};
constexpr size_t kErrorCount = sizeof kErrors / sizeof kErrors[0];

std::string make_error(const ErrorText& e) {
  std::string body = "<html><body><h1>" + std::to_string(e.status) + " " + e.reason + "</h1>\n" + e.body +
                     "\n</body></html>\n";
  return "HTTP/1.1 " + std::to_string(e.status) + " " + e.reason + "\r\nContent-Length: " +
         std::to_string(body.size()) +
         "\r\nCache-Control: no-cache\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n" + body;
}

const std::string* error_responses() {
  // Built once (thread-safe static initialisation); never freed.
  static const std::string* table = [] {
    auto* t = new std::string[kErrorCount];
    for (size_t i = 0; i < kErrorCount; ++i) t[i] = make_error(kErrors[i]);
    return t;
  }();
  return table;
}

HttpAction act(HttpAction::Kind kind, Side side = Side::Client) noexcept {
  HttpAction a;
  a.kind = kind;
  a.side = side;
  return a;
}

std::string_view sv(const uint8_t* p, size_t n) noexcept { return {reinterpret_cast<const char*>(p), n}; }

enum class Forwarded : uint8_t { None, For, Proto, Port };

// X-Forwarded-For / -Proto / -Port, ignoring case (FieldId::Other fields only).
Forwarded forwarded_kind(std::string_view name) noexcept {
  if (name.size() < 15 || name.size() > 17) return Forwarded::None;
  if (!http1::equals_ignore_case(name.substr(0, 12), "x-forwarded-")) return Forwarded::None;
  std::string_view rest = name.substr(12);
  if (http1::equals_ignore_case(rest, "for")) return Forwarded::For;
  if (http1::equals_ignore_case(rest, "proto")) return Forwarded::Proto;
  if (http1::equals_ignore_case(rest, "port")) return Forwarded::Port;
  return Forwarded::None;
}

}  // namespace

std::string_view http_error_response(int status) noexcept {
  const std::string* table = error_responses();
  for (size_t i = 0; i < kErrorCount; ++i) {
    if (kErrors[i].status == status) return table[i];
  }
  return table[0];  // 400
}

// ---- life cycle ---------------------------------------------------------------------------

HttpSession::HttpSession(HttpRouter& router, const HttpFrontOptions& options, const HttpClient& client,
                         uint64_t cookie) noexcept
    : router_(&router),
      options_(&options),
      client_(client),
      cookie_(cookie),
      req_parser_(options.limits),
      resp_parser_(options.limits) {}

HttpSession::~HttpSession() = default;

void HttpSession::reset(HttpRouter& router, const HttpFrontOptions& options, const HttpClient& client,
                        uint64_t cookie) noexcept {
  // Everything but the buffers' memory (ByteBuf, the parsed heads' field vectors).
  router_ = &router;
  options_ = &options;
  client_ = client;
  cookie_ = cookie;
  phase_ = Phase::WaitRequest;
  requests_ = 0;
  client_in_ = {};
  client_recv_ = client_eof_ = client_shut_ = false;
  to_client_ = {};
  head_acc_.clear();
  head_acc_.trim(4096);
  req_parser_ = http1::RequestParser(options.limits);
  request_active_ = false;
  keep_client_ = true;
  linger_ = false;
  backend_ = nullptr;
  expect_continue_ = continue_sent_ = upgrade_ = false;
  client_http10_ = false;
  req_body_ = {};
  up_ = Up::Head;
  body_in_out_ = true;
  out_.clear();
  out_.trim(8192);
  tried_.clear();
  ticket_ = {};
  holds_slot_ = server_attached_ = connect_cancelled_ = reused_ = false;
  attempt_ = 0;
  proxy_header_len_ = 0;
  server_in_ = {};
  server_recv_ = false;
  to_server_ = {};
  resp_acc_.clear();
  resp_acc_.trim(4096);
  resp_out_.clear();
  resp_out_.trim(8192);
  resp_parser_ = http1::ResponseParser(options.limits);
  resp_body_ = {};
  down_ = Down::Head;
  response_byte_ = final_sent_ = false;
  keep_server_ = true;
  server_eof_ = tunnel_server_shut_ = false;
  summary_ = {};
}

void HttpSession::rebind(HttpRouter& router, const HttpFrontOptions& options) noexcept {
  if (!between_requests()) return;
  router_ = &router;
  if (options_ != &options) {
    options_ = &options;
    req_parser_ = http1::RequestParser(options.limits);
    resp_parser_ = http1::ResponseParser(options.limits);
  }
}

void HttpSession::set_proxy_header(std::span<const uint8_t> header) noexcept {
  proxy_header_len_ = 0;
  if (header.empty()) return;
  if (!proxy_header_) {
    proxy_header_.reset(new (std::nothrow) std::array<uint8_t, kMaxProxyHeader>());
    if (!proxy_header_) return;  // without memory the request goes without it; the server refuses it
  }
  proxy_header_len_ = static_cast<uint32_t>(std::min(header.size(), proxy_header_->size()));
  std::memcpy(proxy_header_->data(), header.data(), proxy_header_len_);
}

void HttpSession::start(SteadyTime now, HttpActions& out) noexcept {
  accepted_ = idle_since_ = client_last_ = server_last_ = now;
  phase_ = Phase::WaitRequest;
  read_client(out);
}

bool HttpSession::between_requests() const noexcept { return phase_ == Phase::WaitRequest && !request_active_; }

// ---- sends and held buffers ---------------------------------------------------------------

void HttpSession::send(Side side, SendWhat what, const uint8_t* data, uint32_t len, uint32_t consume,
                       HttpActions& out) noexcept {
  Sending& s = side == Side::Client ? to_client_ : to_server_;
  s = {what, data, len, 0, consume};
  HttpAction a = act(HttpAction::Kind::Send, side);
  a.data = data;
  a.len = len;
  out.push(a);
}

void HttpSession::release(Held& h, HttpActions& out) noexcept {
  if (h.buffer.valid()) {
    HttpAction a = act(HttpAction::Kind::Release, &h == &client_in_ ? Side::Client : Side::Server);
    a.buffer = h.buffer;
    out.push(a);
  }
  h = {};
}

void HttpSession::consume(Held& h, uint32_t n, HttpActions& out) noexcept {
  h.off += n;
  if (h.off >= h.len) release(h, out);
}

// The client is read whenever nothing of it is held: the next chunk of a body, the next
// request (which also tells a client that went away from one that waits), or, while
// closing, what is left to throw away.
void HttpSession::read_client(HttpActions& out) noexcept {
  if (client_recv_ || client_in_.buffer.valid() || client_eof_ || phase_ == Phase::Finished) return;
  client_recv_ = true;
  out.push(act(HttpAction::Kind::Recv, Side::Client));
}

// The server is read while a response (or tunnel bytes) may come and nothing of it is held.
void HttpSession::read_server(HttpActions& out) noexcept {
  if (server_recv_ || server_in_.buffer.valid() || !server_attached_ || server_eof_) return;
  if (phase_ == Phase::Tunnel || (phase_ == Phase::Exchange && down_ != Down::Done)) {
    server_recv_ = true;
    out.push(act(HttpAction::Kind::Recv, Side::Server));
  }
}

// ---- events -------------------------------------------------------------------------------

void HttpSession::on_recv(Side side, int32_t result, IoBuffer buffer, SteadyTime now, HttpActions& out) noexcept {
  if (side == Side::Client) {
    client_recv_ = false;
  } else {
    server_recv_ = false;
  }
  if (phase_ == Phase::Finished || (side == Side::Server && !server_attached_)) {
    if (buffer.valid()) {
      HttpAction a = act(HttpAction::Kind::Release, side);
      a.buffer = buffer;
      out.push(a);
    }
    return;
  }
  if (side == Side::Client) {
    if (result > 0) {
      client_last_ = now;
      client_in_ = {buffer, 0, static_cast<uint32_t>(result)};
      if (phase_ == Phase::Closing) {
        release(client_in_, out);  // what follows an error answer is thrown away
        read_client(out);
        return;
      }
      process_client(now, out);
      return;
    }
    if (result < 0) {
      client_broken(result, now, out);
      return;
    }
    client_eof_ = true;
    switch (phase_) {
      case Phase::WaitRequest:
        // Between requests a client may go; in the middle of a head it aborted.
        finish(EndCause::ClientAbort, EndPhase::Request, std::nullopt, now, out);
        return;
      case Phase::Closing:
        finish(summary_.cause, summary_.phase, std::nullopt, now, out);
        return;
      case Phase::Tunnel:
        pump_tunnel(now, out);
        return;
      default:
        // A client may shut down its side once its request is out; it still gets the
        // response, and the connection closes after it. Before that, it aborted.
        keep_client_ = false;
        if (!req_body_.done() && up_ != Up::Done) {
          finish(EndCause::ClientAbort, current_phase(), ErrorKind::ClientReset, now, out);
        }
        return;
    }
  }
  // the server
  if (result > 0) {
    server_last_ = now;
    if (phase_ != Phase::Tunnel && (phase_ != Phase::Exchange || down_ == Down::Done)) {
      // Bytes after a complete response: the connection is out of step; never reuse it.
      keep_server_ = false;
      HttpAction a = act(HttpAction::Kind::Release, Side::Server);
      a.buffer = buffer;
      out.push(a);
      return;
    }
    server_in_ = {buffer, 0, static_cast<uint32_t>(result)};
    if (phase_ == Phase::Tunnel) {
      pump_tunnel(now, out);
      return;
    }
    if (!response_byte_) {
      response_byte_ = true;
      if (!summary_.response_time) summary_.response_time = now - request_sent_at_;
    }
    pump_down(now, out);
    return;
  }
  server_closed(result, now, out);
}

void HttpSession::on_send(Side side, int32_t result, SteadyTime now, HttpActions& out) noexcept {
  if (phase_ == Phase::Finished) return;
  Sending& s = side == Side::Client ? to_client_ : to_server_;
  if (!s.pending()) return;
  if (result <= 0) {
    s = {};
    if (side == Side::Client) {
      client_broken(result < 0 ? result : -EPIPE, now, out);
    } else {
      server_broken(result < 0 ? result : -EPIPE, now, out);
    }
    return;
  }
  if (side == Side::Client) {
    client_last_ = now;
    summary_.bytes_to_client += static_cast<uint32_t>(result);
  } else {
    server_last_ = now;
  }
  s.sent += static_cast<uint32_t>(result);
  if (s.sent < s.len) {
    HttpAction a = act(HttpAction::Kind::Send, side);
    a.data = s.data + s.sent;
    a.len = s.len - s.sent;
    out.push(a);
    return;
  }
  const SendWhat what = s.what;
  const uint32_t covered = s.consume;
  s = {};
  switch (what) {
    case SendWhat::None:
      return;
    case SendWhat::ProxyHeader:
      send_request_head(now, out);
      return;
    case SendWhat::RequestHead:
      if (phase_ == Phase::Tunnel) {
        pump_tunnel(now, out);
        return;
      }
      // (An answer that came first may have settled the request body already.)
      if (up_ == Up::Head) up_ = req_body_.done() ? Up::Done : Up::Body;
      pump_up(now, out);
      maybe_request_done(now, out);
      return;
    case SendWhat::RequestBody:
      consume(client_in_, covered, out);
      if (phase_ == Phase::Tunnel) {
        pump_tunnel(now, out);
        return;
      }
      if (up_ == Up::Body && req_body_.done()) up_ = Up::Done;
      pump_up(now, out);
      read_client(out);
      maybe_request_done(now, out);
      return;
    case SendWhat::Interim:
      consume(server_in_, covered, out);
      pump_down(now, out);
      return;
    case SendWhat::ResponseHead:
    case SendWhat::ResponseBody:
      consume(server_in_, covered, out);
      if (phase_ == Phase::Tunnel || resp_.framing == Framing::Tunnel) {
        if (phase_ != Phase::Tunnel) start_tunnel(now, out);
        else pump_tunnel(now, out);
        return;
      }
      if (resp_body_.done()) {
        down_ = Down::Done;
        if (server_in_.buffer.valid()) {
          // Bytes after the end of the response: the server is out of step.
          keep_server_ = false;
          release(server_in_, out);
        }
        maybe_request_done(now, out);
        return;
      }
      pump_down(now, out);
      return;
    case SendWhat::Error:
      out.push(act(HttpAction::Kind::ShutdownWrite, Side::Client));
      client_shut_ = true;
      if (client_eof_) {
        finish(summary_.cause, summary_.phase, std::nullopt, now, out);
        return;
      }
      closing_at_ = now;
      read_client(out);
      return;
  }
}

void HttpSession::on_connect(int32_t result, bool reused, bool recv_armed, SteadyTime now, HttpActions& out) noexcept {
  if (phase_ != Phase::Connecting) return;
  if (connect_cancelled_) {
    connect_failed(PassiveEventKind::ConnectTimeout, 0, now, out);
    return;
  }
  if (result < 0) {
    connect_failed(connect_failure_kind(result), -result, now, out);
    return;
  }
  reused_ = reused;
  if (reused) {
    summary_.reused = true;
  } else {
    summary_.connect_time = now - connect_started_;
    HttpAction a = act(HttpAction::Kind::Connected, Side::Server);
    a.backend = backend_->id;
    a.server = *summary_.server;
    out.push(a);
  }
  server_recv_ = recv_armed;
  server_last_ = now;
  phase_ = Phase::Exchange;
  if (!reused && proxy_header_len_ > 0) {
    send(Side::Server, SendWhat::ProxyHeader, proxy_header_->data(), proxy_header_len_, 0, out);
  } else {
    send_request_head(now, out);
  }
  read_server(out);
}

void HttpSession::on_dispatch(ServerIndex server, SteadyTime now, HttpActions& out) noexcept {
  if (phase_ != Phase::Queued) return;
  summary_.queue_time = now - queued_at_;
  ticket_ = {};
  connect_to(server, now, out);
}

// ---- the request ----------------------------------------------------------------------------

void HttpSession::process_client(SteadyTime now, HttpActions& out) noexcept {
  switch (phase_) {
    case Phase::WaitRequest:
      parse_request(now, out);
      return;
    case Phase::Exchange:
      pump_up(now, out);
      return;
    case Phase::Tunnel:
      pump_tunnel(now, out);
      return;
    default:
      // Queued or connecting: body bytes (or a pipelined request) wait in their buffer.
      return;
  }
}

void HttpSession::parse_request(SteadyTime now, HttpActions& out) noexcept {
  if (!request_active_) {
    request_active_ = true;
    summary_ = {};
    summary_.started = now;
  }
  const bool gathering = !head_acc_.empty();
  std::string_view input;
  if (gathering) {
    if (!head_acc_.append(client_in_.at(), client_in_.available())) {
      finish(EndCause::Proxy, EndPhase::Request, ErrorKind::ProxyError, now, out);
      return;
    }
    input = head_acc_.view();
  } else {
    input = sv(client_in_.at(), client_in_.available());
  }
  http1::ParseResult r = req_parser_.feed(input, req_);
  switch (r.status) {
    case ParseStatus::NeedMore:
      // The head goes on in the next receive: keep what came so far (the parser bounds it).
      if (!gathering && !head_acc_.append(input)) {
        finish(EndCause::Proxy, EndPhase::Request, ErrorKind::ProxyError, now, out);
        return;
      }
      release(client_in_, out);
      read_client(out);
      return;
    case ParseStatus::Error: {
      static constexpr std::string_view kBad = "<BADREQ>";
      std::memcpy(summary_.line.data(), kBad.data(), kBad.size());
      summary_.line_len = static_cast<uint16_t>(kBad.size());
      summary_.bytes_from_client += input.size();
      head_acc_.clear();
      summary_.request_time = now - summary_.started;
      fail(http1::status_of(r.error), EndCause::Proxy, EndPhase::Request, ErrorKind::BadRequest, now, out);
      return;
    }
    case ParseStatus::Done:
      break;
  }
  // Where the head ends in the receive buffer: when gathering, everything after the head
  // came with this receive (the head was not complete before it).
  const auto after = static_cast<uint32_t>(input.size() - r.consumed);
  const uint32_t head_end = gathering ? client_in_.len - after : client_in_.off + static_cast<uint32_t>(r.consumed);
  summary_.bytes_from_client += r.consumed;
  request_parsed(head_end, now, out);
}

void HttpSession::set_line(const http1::RequestHead& h) noexcept {
  size_t n = 0;
  auto put = [&](std::string_view s) {
    size_t take = std::min(s.size(), summary_.line.size() - n);
    std::memcpy(summary_.line.data() + n, s.data(), take);
    n += take;
  };
  put(h.method);
  put(" ");
  put(h.target);
  put(" ");
  put(http1::to_string(h.version));
  summary_.line_len = static_cast<uint16_t>(n);
}

void HttpSession::request_parsed(uint32_t head_end, SteadyTime now, HttpActions& out) noexcept {
  ++requests_;
  summary_.request_time = now - summary_.started;
  set_line(req_);
  method_ = req_.method_id;
  expect_continue_ = req_.expect_continue;
  continue_sent_ = false;
  upgrade_ = req_.upgrade;
  client_http10_ = req_.version == Version::Http10;
  if (!req_.keep_alive) keep_client_ = false;
  req_body_ = http1::BodyReader(req_.framing, req_.content_length, options_->limits);
  backend_ = router_->route(req_.authority, req_.path);
  const bool built = backend_ && build_request_head(req_);
  // The head's views point into the receive buffer or head_acc_: from here on only out_
  // and the copied values are used.
  client_in_.off = head_end;
  if (!req_body_.done() && client_in_.available() > 0) {
    bool done = false, bad = false;
    uint32_t n = body_bytes(req_body_, client_in_.at(), client_in_.available(), done, bad);
    if (bad) {
      head_acc_.clear();
      fail(400, EndCause::Proxy, EndPhase::Request, ErrorKind::BadRequest, now, out);
      return;
    }
    if (built && !out_.append(client_in_.at(), n)) {
      finish(EndCause::Proxy, EndPhase::Request, ErrorKind::ProxyError, now, out);
      return;
    }
    client_in_.off += n;
    summary_.bytes_from_client += n;
  }
  if (client_in_.available() == 0) release(client_in_, out);
  head_acc_.clear();
  head_acc_.trim(4096);
  up_ = Up::Head;
  body_in_out_ = true;
  down_ = Down::Head;
  response_byte_ = final_sent_ = false;
  keep_server_ = true;
  reused_ = false;
  resp_parser_.reset();
  resp_acc_.clear();
  tried_.clear();
  if (!backend_) {
    fail(503, EndCause::ServerAbort, EndPhase::Connect, ErrorKind::NoServer, now, out);
    return;
  }
  summary_.backend = backend_->id;
  if (!built) {
    finish(EndCause::Proxy, EndPhase::Request, ErrorKind::ProxyError, now, out);
    return;
  }
  // Read on for the body, or for the next request (which also tells a client that went
  // away from one that waits); a last request with all of it here needs no more reading.
  if (keep_client_ || !req_body_.done()) read_client(out);
  choose_server(now, out);
}

// The head as the server gets it: the request line as received, the fields but hop-by-hop
// ones (Upgrade stays when the client asks to upgrade), Content-Length / Transfer-Encoding
// written from the framing the parser found, and X-Forwarded-* when the backend wants them.
bool HttpSession::build_request_head(const http1::RequestHead& h) noexcept {
  const bool fwd = backend_->options.forward_for;
  ByteBuf& b = out_;
  b.clear();
  bool ok = b.append(h.method) && b.append(" ") && b.append(h.target) && b.append(" ") &&
            b.append(http1::to_string(h.version)) && b.append("\r\n");
  size_t forwarded_for = 0;
  for (const http1::Field& f : h.fields) {
    if (f.hop_by_hop && !(upgrade_ && f.id == FieldId::Upgrade)) continue;
    if (f.id == FieldId::ContentLength || f.id == FieldId::TransferEncoding) continue;
    if (fwd && f.id == FieldId::Other) {
      Forwarded k = forwarded_kind(f.name);
      if (k == Forwarded::For) ++forwarded_for;
      if (k != Forwarded::None) continue;  // ours replace the client's (appended to, for -For)
    }
    ok = ok && b.append(f.name) && b.append(": ") && b.append(f.value) && b.append("\r\n");
  }
  if (h.framing == Framing::Length) {
    ok = ok && b.append("Content-Length: ") && b.append_number(h.content_length) && b.append("\r\n");
  } else if (h.framing == Framing::Chunked) {
    ok = ok && b.append("Transfer-Encoding: chunked\r\n");
  }
  if (upgrade_) {
    ok = ok && b.append("Connection: upgrade\r\n");
  } else if (h.version == Version::Http10) {
    // The server may keep the connection for the next request, whoever sends it.
    ok = ok && b.append("Connection: keep-alive\r\n");
  }
  if (fwd) {
    ok = ok && b.append("X-Forwarded-For: ");
    if (forwarded_for > 0) {
      for (const http1::Field& f : h.fields) {
        if (f.id != FieldId::Other || forwarded_kind(f.name) != Forwarded::For || f.value.empty()) continue;
        ok = ok && b.append(f.value) && b.append(", ");
      }
    }
    ok = ok && b.append(client_.address_text()) && b.append("\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: ") &&
         b.append_number(client_.local_port) && b.append("\r\n");
  }
  return ok && b.append("\r\n");
}

void HttpSession::choose_server(SteadyTime now, HttpActions& out) noexcept {
  PickRequest request;
  request.hash = client_.hash;
  request.tried = &tried_;
  Balancer& balancer = *backend_->balancer;
  Pick pick = balancer.pick(request);
  switch (pick.status) {
    case PickStatus::Picked:
      connect_to(pick.server, now, out);
      return;
    case PickStatus::Queue: {
      if (backend_->options.queue.count() > 0) {
        Enqueued e = balancer.enqueue(cookie_, now, request);
        if (e.status == EnqueueStatus::Queued) {
          phase_ = Phase::Queued;
          queued_at_ = now;
          ticket_ = e.ticket;
          return;
        }
      }
      fail(503, EndCause::ServerAbort, EndPhase::Queue, ErrorKind::QueueFull, now, out);
      return;
    }
    case PickStatus::Unavailable:
      if (tried_.size() > 0) {
        tried_.clear();
        choose_server(now, out);
        return;
      }
      fail(503, EndCause::ServerAbort, EndPhase::Connect,
           summary_.failed_connects == 0 ? std::optional<ErrorKind>(ErrorKind::NoServer) : std::nullopt, now, out);
      return;
  }
}

void HttpSession::connect_to(ServerIndex server, SteadyTime now, HttpActions& out) noexcept {
  backend_->balancer->on_connect_start(server);
  holds_slot_ = true;
  server_attached_ = true;
  summary_.server = server;
  phase_ = Phase::Connecting;
  connect_started_ = now;
  connect_cancelled_ = false;
  server_recv_ = false;
  server_eof_ = false;
  to_server_ = {};
  attempt_ = static_cast<uint8_t>((attempt_ + 1) & 0x0f);
  proxy_header_len_ = 0;
  HttpAction a = act(HttpAction::Kind::Connect, Side::Server);
  a.backend = backend_->id;
  a.server = server;
  a.attempt = attempt_;
  // A pooled connection may have been closed by its server just now; only a request that
  // can be sent again, or one the client can retry itself (not its first), takes the risk.
  a.reuse = !summary_.retried && (requests_ > 1 || is_idempotent(method_));
  out.push(a);
}

void HttpSession::connect_failed(PassiveEventKind kind, int32_t error, SteadyTime now, HttpActions& out) noexcept {
  ServerIndex server = *summary_.server;
  report(kind, error, out);
  drop_server(out);
  release_slot(now, out);
  ++summary_.failed_connects;
  switch (retry_action(summary_.failed_connects, backend_->options.retries, backend_->options.redispatch)) {
    case RetryAction::GiveUp:
      fail(503, kind == PassiveEventKind::ConnectTimeout ? EndCause::ServerTimeout : EndCause::ServerAbort,
           EndPhase::Connect, std::nullopt, now, out);
      return;
    case RetryAction::SameServer:
      connect_to(server, now, out);
      return;
    case RetryAction::OtherServer:
      tried_.add(server);
      choose_server(now, out);
      return;
  }
}

void HttpSession::send_request_head(SteadyTime now, HttpActions& out) noexcept {
  up_ = Up::Head;
  request_sent_at_ = now;
  send(Side::Server, SendWhat::RequestHead, out_.data(), out_.size(), 0, out);
}

// Request body bytes from the client's buffer to the server, one buffer at a time.
void HttpSession::pump_up(SteadyTime now, HttpActions& out) noexcept {
  if (phase_ != Phase::Exchange || up_ != Up::Body || to_server_.pending()) return;
  if (client_in_.available() == 0) {
    read_client(out);
    return;
  }
  bool done = false, bad = false;
  uint32_t n = body_bytes(req_body_, client_in_.at(), client_in_.available(), done, bad);
  if (bad) {
    fail(400, EndCause::Proxy, EndPhase::Data, ErrorKind::BadRequest, now, out);
    return;
  }
  if (n == 0) {
    if (req_body_.done()) {
      up_ = Up::Done;
      maybe_request_done(now, out);
    }
    return;
  }
  body_in_out_ = false;
  summary_.bytes_from_client += n;
  send(Side::Server, SendWhat::RequestBody, client_in_.at(), n, n, out);
}

uint32_t HttpSession::body_bytes(http1::BodyReader& reader, const uint8_t* data, uint32_t n, bool& done,
                                 bool& bad) noexcept {
  uint32_t used = 0;
  while (used < n) {
    http1::BodyStep st = reader.next(sv(data + used, n - used));
    if (st.status == http1::BodyStatus::Error) {
      bad = true;
      return used;
    }
    used += static_cast<uint32_t>(st.consumed);
    if (st.status == http1::BodyStatus::Done) {
      done = true;
      return used;
    }
    if (st.status == http1::BodyStatus::NeedMore) break;
  }
  done = reader.done();
  return used;
}

// ---- the response ---------------------------------------------------------------------------

void HttpSession::pump_down(SteadyTime now, HttpActions& out) noexcept {
  while (phase_ == Phase::Exchange && !to_client_.pending() && server_in_.available() > 0) {
    if (down_ == Down::Head) {
      parse_response(now, out);
      continue;
    }
    if (down_ == Down::Done) {
      keep_server_ = false;
      release(server_in_, out);
      break;
    }
    bool done = false, bad = false;
    uint32_t n = body_bytes(resp_body_, server_in_.at(), server_in_.available(), done, bad);
    if (bad) {
      // The response started: all that can be done is to cut it.
      finish(EndCause::Proxy, EndPhase::Data, ErrorKind::BadResponse, now, out);
      return;
    }
    if (n == 0) {
      if (resp_body_.done()) {
        down_ = Down::Done;
        keep_server_ = false;
        release(server_in_, out);
        maybe_request_done(now, out);
      }
      return;
    }
    send(Side::Client, SendWhat::ResponseBody, server_in_.at(), n, n, out);
  }
  if (phase_ != Phase::Exchange || server_in_.buffer.valid() || to_client_.pending()) return;
  if (down_ == Down::Body && server_eof_ && resp_body_.framing() == Framing::UntilClose) {
    // Everything up to the server's close went out: that was the body.
    down_ = Down::Done;
    drop_server(out);
    maybe_request_done(now, out);
    return;
  }
  read_server(out);
}

void HttpSession::parse_response(SteadyTime now, HttpActions& out) noexcept {
  const bool gathering = !resp_acc_.empty();
  std::string_view input;
  if (gathering) {
    if (!resp_acc_.append(server_in_.at(), server_in_.available())) {
      finish(EndCause::Proxy, EndPhase::Header, ErrorKind::ProxyError, now, out);
      return;
    }
    input = resp_acc_.view();
  } else {
    input = sv(server_in_.at(), server_in_.available());
  }
  http1::ParseResult r = resp_parser_.feed(input, method_, resp_);
  switch (r.status) {
    case ParseStatus::NeedMore:
      if (!gathering && !resp_acc_.append(input)) {
        finish(EndCause::Proxy, EndPhase::Header, ErrorKind::ProxyError, now, out);
        return;
      }
      release(server_in_, out);
      return;
    case ParseStatus::Error:
      resp_acc_.clear();
      keep_server_ = false;
      fail(502, EndCause::Proxy, EndPhase::Header, ErrorKind::BadResponse, now, out);
      return;
    case ParseStatus::Done:
      break;
  }
  const auto after = static_cast<uint32_t>(input.size() - r.consumed);
  const uint32_t body_start =
      gathering ? server_in_.len - after : server_in_.off + static_cast<uint32_t>(r.consumed);
  response_parsed(input.substr(0, r.consumed), !gathering, body_start, now, out);
}

void HttpSession::response_parsed(std::string_view head_bytes, bool in_place, uint32_t body_start, SteadyTime now,
                                  HttpActions& out) noexcept {
  const uint16_t status = resp_.status;
  const uint32_t head_consume = body_start - server_in_.off;
  if (status < 200 && status != 101) {
    // Interim: passed on (HTTP/1.0 clients never get one, RFC 9110 15.2), then the next head.
    resp_parser_.reset();
    if (client_http10_) {
      resp_acc_.clear();
      consume(server_in_, head_consume, out);
      return;
    }
    if (!build_response_head(resp_, true)) {
      finish(EndCause::Proxy, EndPhase::Header, ErrorKind::ProxyError, now, out);
      return;
    }
    resp_acc_.clear();
    if (status == 100) continue_sent_ = true;
    if (in_place && resp_out_.size() <= head_bytes.size()) {
      uint8_t* dst = server_in_.buffer.data + body_start - resp_out_.size();
      std::memmove(dst, resp_out_.data(), resp_out_.size());
      send(Side::Client, SendWhat::Interim, dst, resp_out_.size(), head_consume, out);
    } else {
      send(Side::Client, SendWhat::Interim, resp_out_.data(), resp_out_.size(), head_consume, out);
    }
    return;
  }
  if (status == 101 && !upgrade_) {
    // Switching protocols nobody asked for: the server is not speaking HTTP to us.
    resp_acc_.clear();
    keep_server_ = false;
    fail(502, EndCause::Proxy, EndPhase::Header, ErrorKind::BadResponse, now, out);
    return;
  }
  const bool tunnel = resp_.framing == Framing::Tunnel;
  keep_server_ = keep_server_ && resp_.keep_alive && !tunnel;
  if (resp_.framing == Framing::UntilClose || tunnel) keep_client_ = false;
  // HTTP/1.0 clients cannot read chunked: they read until the connection closes.
  if (client_http10_ && resp_.framing == Framing::Chunked) keep_client_ = false;
  if (up_ != Up::Done && expect_continue_ && !continue_sent_) {
    // A final answer to "Expect: 100-continue" before any 100: the client may never send
    // its body, so do not wait for it; neither connection can carry another request.
    up_ = Up::Done;
    keep_client_ = false;
    keep_server_ = false;
  }
  summary_.status = status;
  if (status >= 500) report(PassiveEventKind::Http5xx, 0, out);
  resp_body_ = http1::BodyReader(tunnel ? Framing::None : resp_.framing, resp_.content_length, options_->limits);
  if (!build_response_head(resp_, false)) {
    finish(EndCause::Proxy, EndPhase::Header, ErrorKind::ProxyError, now, out);
    return;
  }
  resp_acc_.clear();
  uint32_t n = 0;
  if (!tunnel && body_start < server_in_.len) {
    bool done = false, bad = false;
    n = body_bytes(resp_body_, server_in_.buffer.data + body_start, server_in_.len - body_start, done, bad);
    if (bad) {
      keep_server_ = false;
      fail(502, EndCause::Proxy, EndPhase::Header, ErrorKind::BadResponse, now, out);
      return;
    }
  }
  final_sent_ = true;
  down_ = Down::Body;
  if (in_place && resp_out_.size() <= head_bytes.size()) {
    uint8_t* dst = server_in_.buffer.data + body_start - resp_out_.size();
    std::memmove(dst, resp_out_.data(), resp_out_.size());
    send(Side::Client, SendWhat::ResponseHead, dst, resp_out_.size() + n, head_consume + n, out);
  } else {
    if (!resp_out_.append(server_in_.buffer.data + body_start, n)) {
      finish(EndCause::Proxy, EndPhase::Header, ErrorKind::ProxyError, now, out);
      return;
    }
    send(Side::Client, SendWhat::ResponseHead, resp_out_.data(), resp_out_.size(), head_consume + n, out);
  }
}

// The head as the client gets it: our version, the status and reason as received, the
// fields but hop-by-hop ones, Transfer-Encoding as received (the body goes through as it
// came), Content-Length written from the framing (kept as received for bodiless answers,
// where it describes the representation), and Connection as this connection needs it.
bool HttpSession::build_response_head(const http1::ResponseHead& h, bool interim) noexcept {
  ByteBuf& b = resp_out_;
  b.clear();
  const bool tunnel = !interim && h.framing == Framing::Tunnel;
  bool ok = b.append("HTTP/1.1 ") && b.append_number(h.status) && b.append(" ") && b.append(h.reason) &&
            b.append("\r\n");
  for (const http1::Field& f : h.fields) {
    if (f.id == FieldId::TransferEncoding) {
      if (interim || h.framing == Framing::None || tunnel) continue;
    } else if (f.id == FieldId::ContentLength) {
      if (h.framing != Framing::None) continue;
    } else if (f.hop_by_hop && !(tunnel && f.id == FieldId::Upgrade)) {
      continue;
    }
    ok = ok && b.append(f.name) && b.append(": ") && b.append(f.value) && b.append("\r\n");
  }
  if (!interim) {
    if (h.framing == Framing::Length) {
      ok = ok && b.append("Content-Length: ") && b.append_number(h.content_length) && b.append("\r\n");
    }
    if (tunnel && h.status == 101) {
      ok = ok && b.append("Connection: upgrade\r\n");
    } else if (!keep_client_) {
      ok = ok && b.append("Connection: close\r\n");
    } else if (client_http10_) {
      ok = ok && b.append("Connection: keep-alive\r\n");
    }
  }
  return ok && b.append("\r\n");
}

bool HttpSession::may_retry_fresh() const noexcept {
  return !summary_.retried && is_idempotent(method_) && body_in_out_ && !response_byte_ && down_ == Down::Head &&
         !final_sent_ && !continue_sent_ && !to_client_.pending();
}

// The connection failed before any answer to an idempotent request, all of which is still
// in out_: send it once more on a new connection. A reused one was most likely closed by
// the server's keep-alive time-out as it was taken (the balancer may pick the same server
// again); a new one means the server itself failed, so another server gets it (redispatch).
void HttpSession::retry_fresh(SteadyTime now, HttpActions& out) noexcept {
  summary_.retried = true;
  if (!reused_ && backend_->options.redispatch) tried_.add(*summary_.server);
  drop_server(out);
  release_slot(now, out);
  resp_parser_.reset();
  resp_acc_.clear();
  up_ = Up::Head;
  choose_server(now, out);
}

void HttpSession::server_closed(int32_t error, SteadyTime now, HttpActions& out) noexcept {
  if (phase_ == Phase::Tunnel) {
    if (error < 0) {
      report(PassiveEventKind::Reset, -error, out);
      finish(EndCause::ServerAbort, EndPhase::Data, ErrorKind::ServerReset, now, out);
      return;
    }
    server_eof_ = true;
    pump_tunnel(now, out);
    return;
  }
  if (phase_ != Phase::Exchange) return;
  if (down_ == Down::Done) {
    // Gone after its answer, while the request body still went up: nothing more to do here.
    keep_server_ = false;
    drop_server(out);
    if (up_ != Up::Done) {
      up_ = Up::Done;
      keep_client_ = false;
    }
    maybe_request_done(now, out);
    return;
  }
  if (down_ == Down::Body && error == 0 && resp_body_.framing() == Framing::UntilClose) {
    // The end of a body read until close.
    keep_server_ = false;
    server_eof_ = true;
    pump_down(now, out);
    return;
  }
  // A reset, or a new connection closed without a word, is the server's failure; a reused
  // connection closed before the request reached it is only its keep-alive time-out.
  if ((error < 0 && error != -ECANCELED) || (!reused_ && !response_byte_)) {
    report(PassiveEventKind::Reset, error < 0 ? -error : 0, out);
  }
  if (down_ == Down::Head && !response_byte_ && may_retry_fresh()) {
    retry_fresh(now, out);
    return;
  }
  const EndPhase phase = down_ == Down::Head ? EndPhase::Header : EndPhase::Data;
  if (!final_sent_ && !to_client_.pending()) {
    fail(502, EndCause::ServerAbort, phase, ErrorKind::ServerReset, now, out);
  } else {
    finish(EndCause::ServerAbort, phase, ErrorKind::ServerReset, now, out);
  }
}

void HttpSession::server_broken(int32_t error, SteadyTime now, HttpActions& out) noexcept {
  if (error == -ENOMEM || error == -ENOBUFS) {
    finish(EndCause::Proxy, current_phase(), ErrorKind::ProxyError, now, out);
    return;
  }
  server_closed(error, now, out);
}

void HttpSession::client_broken(int32_t error, SteadyTime now, HttpActions& out) noexcept {
  if (phase_ == Phase::Closing) {
    finish(summary_.cause, summary_.phase, std::nullopt, now, out);
    return;
  }
  if (error == -ENOMEM || error == -ENOBUFS) {
    finish(EndCause::Proxy, current_phase(), ErrorKind::ProxyError, now, out);
    return;
  }
  finish(EndCause::ClientAbort, current_phase(), request_active_ ? std::optional<ErrorKind>(ErrorKind::ClientReset)
                                                                  : std::nullopt,
         now, out);
}

// ---- the end of a request -------------------------------------------------------------------

// A request is done when its response is through and its body went up in full. A server
// may answer before it read the whole body (nginx does, then reads and discards the rest):
// the body still goes up, so both connections can carry the next request; a server that
// stops reading instead is ended by timeouts.server.
void HttpSession::maybe_request_done(SteadyTime now, HttpActions& out) noexcept {
  if (phase_ != Phase::Exchange || down_ != Down::Done || to_client_.pending()) return;
  if (up_ != Up::Done || to_server_.pending()) return;
  request_done(now, out);
}

void HttpSession::request_done(SteadyTime now, HttpActions& out) noexcept {
  end_request(EndCause::Normal, EndPhase::None, std::nullopt, now, out);
  next_request(now, out);
}

void HttpSession::end_request(EndCause cause, EndPhase phase, std::optional<ErrorKind> error, SteadyTime now,
                              HttpActions& out) noexcept {
  if (!request_active_) return;
  request_active_ = false;
  if (phase_ == Phase::Queued && backend_) backend_->balancer->cancel(ticket_);
  ticket_ = {};
  summary_.cause = cause;
  summary_.phase = phase;
  summary_.error = error;
  summary_.total_time = now - summary_.started;
  if (server_attached_) {
    const bool reusable = cause == EndCause::Normal && keep_server_ && down_ == Down::Done && up_ == Up::Done &&
                          !to_server_.pending() && !server_recv_ && !server_in_.buffer.valid() && !server_eof_;
    if (reusable) {
      HttpAction a = act(HttpAction::Kind::ParkServer, Side::Server);
      a.backend = backend_->id;
      a.server = *summary_.server;
      out.push(a);
      server_attached_ = false;
    } else {
      drop_server(out);
    }
  }
  HttpAction a = act(HttpAction::Kind::RequestDone);
  a.len = out.add_done(summary_);
  out.push(a);
  release_slot(now, out);
}

void HttpSession::next_request(SteadyTime now, HttpActions& out) noexcept {
  if (!keep_client_ || client_eof_) {
    finish(EndCause::Normal, EndPhase::None, std::nullopt, now, out);
    return;
  }
  phase_ = Phase::WaitRequest;
  idle_since_ = now;
  backend_ = nullptr;
  up_ = Up::Head;
  down_ = Down::Head;
  req_parser_.reset();
  // A big head or body copy once must not make every idle connection hold that much.
  out_.clear();
  out_.trim(8192);
  resp_out_.clear();
  resp_out_.trim(8192);
  if (client_in_.available() > 0) {
    parse_request(now, out);  // a pipelined request, already here
  } else {
    read_client(out);
  }
}

void HttpSession::release_slot(SteadyTime now, HttpActions& out) noexcept {
  if (!holds_slot_) return;
  holds_slot_ = false;
  if (auto h = backend_->balancer->on_connection_end(*summary_.server, now)) {
    HttpAction a = act(HttpAction::Kind::Handoff);
    a.backend = backend_->id;
    a.handoff = *h;
    out.push(a);
  }
}

void HttpSession::drop_server(HttpActions& out) noexcept {
  if (!server_attached_) return;
  server_attached_ = false;
  // Its pending operations come back as stale completions the worker keeps from us; the
  // close is carried out before any later action of this step, so a buffer released below
  // is never read by a send the close cancels.
  server_recv_ = false;
  to_server_ = {};
  if (server_in_.buffer.valid() && !to_client_.pending()) release(server_in_, out);
  out.push(act(HttpAction::Kind::DropServer, Side::Server));
}

void HttpSession::report(PassiveEventKind kind, int32_t error, HttpActions& out) noexcept {
  if (!backend_ || !summary_.server) return;
  HttpAction a = act(HttpAction::Kind::Report, Side::Server);
  a.backend = backend_->id;
  a.server = *summary_.server;
  a.event = kind;
  a.error = error;
  out.push(a);
}

// An answer of our own. The request ends here (counted, logged); the answer goes out if no
// byte of a final response did, then the client is shut down for writing and read until
// it closes, so unread request bytes cannot turn the close into a reset that loses it.
void HttpSession::fail(int status, EndCause cause, EndPhase phase, std::optional<ErrorKind> error, SteadyTime now,
                       HttpActions& out) noexcept {
  if (phase_ == Phase::Finished || phase_ == Phase::Closing) return;
  keep_client_ = false;
  if (final_sent_ || to_client_.pending()) {
    finish(cause, phase, error, now, out);
    return;
  }
  if (!request_active_) {
    request_active_ = true;
    summary_.started = accepted_;
  }
  std::string_view answer = http_error_response(status);
  summary_.status = static_cast<uint16_t>(status);
  summary_.bytes_to_client += answer.size();  // about to go out
  if (server_attached_) drop_server(out);
  end_request(cause, phase, error, now, out);
  release(server_in_, out);
  phase_ = Phase::Closing;
  closing_at_ = now;
  release(client_in_, out);
  send(Side::Client, SendWhat::Error, reinterpret_cast<const uint8_t*>(answer.data()),
       static_cast<uint32_t>(answer.size()), 0, out);
  read_client(out);
}

// ---- tunnels --------------------------------------------------------------------------------

void HttpSession::start_tunnel(SteadyTime now, HttpActions& out) noexcept {
  phase_ = Phase::Tunnel;
  keep_client_ = keep_server_ = false;
  up_ = Up::Done;
  down_ = Down::Done;
  pump_tunnel(now, out);
}

// Bytes both ways, one buffer per direction, with half-close; like a tcp-mode connection.
void HttpSession::pump_tunnel(SteadyTime now, HttpActions& out) noexcept {
  if (phase_ != Phase::Tunnel) return;
  if (!to_server_.pending()) {
    if (client_in_.available() > 0) {
      summary_.bytes_from_client += client_in_.available();
      send(Side::Server, SendWhat::RequestBody, client_in_.at(), client_in_.available(), client_in_.available(), out);
    } else if (client_eof_) {
      if (!tunnel_server_shut_) {
        tunnel_server_shut_ = true;
        out.push(act(HttpAction::Kind::ShutdownWrite, Side::Server));
      }
    } else {
      read_client(out);
    }
  }
  if (!to_client_.pending()) {
    if (server_in_.available() > 0) {
      send(Side::Client, SendWhat::ResponseBody, server_in_.at(), server_in_.available(), server_in_.available(), out);
    } else if (server_eof_) {
      if (!client_shut_) {
        client_shut_ = true;
        out.push(act(HttpAction::Kind::ShutdownWrite, Side::Client));
      }
    } else {
      read_server(out);
    }
  }
  if (tunnel_server_shut_ && client_shut_) finish(EndCause::Normal, EndPhase::None, std::nullopt, now, out);
}

// ---- time -----------------------------------------------------------------------------------

std::optional<SteadyTime> HttpSession::deadline() const noexcept {
  const HttpFrontOptions& o = *options_;
  std::optional<SteadyTime> at;
  switch (phase_) {
    case Phase::Finished:
      return std::nullopt;
    case Phase::WaitRequest:
      if (request_active_) {
        earliest(at, o.http_request, summary_.started);
      } else if (requests_ == 0) {
        earliest(at, o.http_request, accepted_);
      } else {
        earliest(at, o.keep_alive.count() > 0 ? o.keep_alive : o.http_request, idle_since_);
      }
      return at;
    case Phase::Queued:
      earliest(at, backend_->options.queue, queued_at_);
      return at;
    case Phase::Connecting:
      if (!connect_cancelled_) earliest(at, backend_->options.connect, connect_started_);
      return at;
    case Phase::Exchange:
      if ((up_ == Up::Body && !to_server_.pending()) || to_client_.pending()) earliest(at, o.client, client_last_);
      if ((down_ != Down::Done && server_recv_) || to_server_.pending()) {
        earliest(at, backend_->options.server, server_last_);
      }
      return at;
    case Phase::Tunnel:
      if (o.tunnel_idle.count() > 0) {
        earliest(at, o.tunnel_idle, std::max(client_last_, server_last_));
      } else {
        earliest(at, o.client, client_last_);
        earliest(at, backend_->options.server, server_last_);
      }
      return at;
    case Phase::Closing:
      earliest(at, kLingerTime, closing_at_);
      return at;
  }
  return std::nullopt;
}

void HttpSession::on_timer(SteadyTime now, HttpActions& out) noexcept {
  const HttpFrontOptions& o = *options_;
  switch (phase_) {
    case Phase::Finished:
      return;
    case Phase::WaitRequest: {
      auto at = deadline();
      if (!at || now < *at) return;
      if (request_active_ || requests_ == 0) {
        // HAProxy answers 408 to a connection that sent nothing in time, too.
        if (!request_active_) {
          static constexpr std::string_view kBad = "<BADREQ>";
          request_active_ = true;
          summary_ = {};
          summary_.started = accepted_;
          std::memcpy(summary_.line.data(), kBad.data(), kBad.size());
          summary_.line_len = static_cast<uint16_t>(kBad.size());
        } else if (summary_.line_len == 0) {
          static constexpr std::string_view kBad = "<BADREQ>";
          std::memcpy(summary_.line.data(), kBad.data(), kBad.size());
          summary_.line_len = static_cast<uint16_t>(kBad.size());
        }
        head_acc_.clear();
        fail(408, EndCause::ClientTimeout, EndPhase::Request, ErrorKind::RequestTimeout, now, out);
      } else {
        // An idle keep-alive connection: closed without a word, as HAProxy does.
        finish(EndCause::ClientTimeout, EndPhase::Request, std::nullopt, now, out);
      }
      return;
    }
    case Phase::Queued:
      if (expired(backend_->options.queue, queued_at_, now)) {
        summary_.queue_time = now - queued_at_;
        fail(503, EndCause::ServerTimeout, EndPhase::Queue, ErrorKind::QueueTimeout, now, out);
      }
      return;
    case Phase::Connecting:
      if (!connect_cancelled_ && expired(backend_->options.connect, connect_started_, now)) {
        connect_cancelled_ = true;
        out.push(act(HttpAction::Kind::CancelConnect, Side::Server));
      }
      return;
    case Phase::Exchange: {
      const bool waiting_server = (down_ != Down::Done && server_recv_) || to_server_.pending();
      const bool waiting_client = (up_ == Up::Body && !to_server_.pending()) || to_client_.pending();
      if (waiting_server && expired(backend_->options.server, server_last_, now)) {
        const EndPhase phase = down_ == Down::Head ? EndPhase::Header : EndPhase::Data;
        fail(504, EndCause::ServerTimeout, phase, ErrorKind::ServerTimeout, now, out);
        return;
      }
      if (waiting_client && expired(o.client, client_last_, now)) {
        fail(408, EndCause::ClientTimeout, EndPhase::Data, ErrorKind::ClientTimeout, now, out);
      }
      return;
    }
    case Phase::Tunnel:
      if (o.tunnel_idle.count() > 0) {
        if (expired(o.tunnel_idle, std::max(client_last_, server_last_), now)) {
          finish(client_last_ <= server_last_ ? EndCause::ClientTimeout : EndCause::ServerTimeout, EndPhase::Data,
                 ErrorKind::IdleTimeout, now, out);
        }
        return;
      }
      if (expired(o.client, client_last_, now)) {
        finish(EndCause::ClientTimeout, EndPhase::Data, ErrorKind::ClientTimeout, now, out);
      } else if (expired(backend_->options.server, server_last_, now)) {
        finish(EndCause::ServerTimeout, EndPhase::Data, ErrorKind::ServerTimeout, now, out);
      }
      return;
    case Phase::Closing:
      if (expired(kLingerTime, closing_at_, now)) finish(summary_.cause, summary_.phase, std::nullopt, now, out);
      return;
  }
}

void HttpSession::kill(SteadyTime now, HttpActions& out) noexcept {
  finish(EndCause::Killed, current_phase(), std::nullopt, now, out);
}

EndPhase HttpSession::current_phase() const noexcept {
  switch (phase_) {
    case Phase::WaitRequest: return EndPhase::Request;
    case Phase::Queued: return EndPhase::Queue;
    case Phase::Connecting: return EndPhase::Connect;
    case Phase::Exchange: return down_ == Down::Head ? EndPhase::Header : EndPhase::Data;
    case Phase::Tunnel:
    case Phase::Closing:
    case Phase::Finished: return EndPhase::Data;
  }
  return EndPhase::Data;
}

void HttpSession::finish(EndCause cause, EndPhase phase, std::optional<ErrorKind> error, SteadyTime now,
                         HttpActions& out) noexcept {
  if (phase_ == Phase::Finished) return;
  end_request(cause, phase, error, now, out);
  if (server_attached_) drop_server(out);
  phase_ = Phase::Finished;
  out.push(act(HttpAction::Kind::Finish));
}

}  // namespace hafront::proxy
