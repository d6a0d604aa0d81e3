#include "proxy/tcp_session.h"

#include <cassert>
#include <cerrno>
#include <cstring>

#include "proxy/session_util.h"

namespace hafront::proxy {

void SessionActions::push(const SessionAction& a) noexcept {
  assert(n_ < kCapacity && "a session step emitted more actions than SessionActions holds");
  if (n_ < kCapacity) items_[n_++] = a;
}

namespace {

SessionAction act(SessionAction::Kind kind, Side side = Side::Client) noexcept {
  SessionAction a;
  a.kind = kind;
  a.side = side;
  return a;
}

}  // namespace

TcpSession::TcpSession(Balancer& balancer, const SessionOptions& options, uint64_t cookie,
                       std::optional<uint64_t> hash) noexcept
    : balancer_(balancer), options_(options), cookie_(cookie), hash_(hash) {}

void TcpSession::set_proxy_header(std::span<const uint8_t> header) noexcept {
  header_len_ = static_cast<uint32_t>(std::min(header.size(), header_.size()));
  std::memcpy(header_.data(), header.data(), header_len_);
  header_sent_ = 0;
}

void TcpSession::start(SteadyTime now, SessionActions& out) noexcept {
  if (phase_ != Phase::Idle) return;
  accepted_ = now;
  last_activity_ = {now, now};
  // Read the client at once: bytes it sends while the server connects wait in the chunk,
  // and a client that goes away is noticed before a server slot is spent on it.
  out.push(act(SessionAction::Kind::Recv, Side::Client));
  choose_server(now, out);
}

void TcpSession::choose_server(SteadyTime now, SessionActions& out) noexcept {
  PickRequest request;
  request.hash = hash_;
  request.tried = &tried_;
  Pick pick = balancer_.pick(request);
  switch (pick.status) {
    case PickStatus::Picked:
      connect_to(pick.server, now, out);
      return;
    case PickStatus::Queue: {
      Enqueued e = balancer_.enqueue(cookie_, now, request);
      if (e.status == EnqueueStatus::Queued) {
        phase_ = Phase::Queued;
        queued_at_ = now;
        ticket_ = e.ticket;
        return;
      }
      finish(EndCause::ServerAbort, EndPhase::Queue, ErrorKind::QueueFull, now, out);
      return;
    }
    case PickStatus::Unavailable:
      if (tried_.size() > 0) {
        // Every candidate failed once and retries are left: go round again (HAProxy retries
        // the same server when there is no other one to redispatch to).
        tried_.clear();
        choose_server(now, out);
        return;
      }
      // After failed attempts the reason is already counted per attempt.
      finish(EndCause::ServerAbort, EndPhase::Connect,
             summary_.failed_connects == 0 ? std::optional<ErrorKind>(ErrorKind::NoServer) : std::nullopt, now,
             out);
      return;
  }
}

void TcpSession::connect_to(ServerIndex server, SteadyTime now, SessionActions& out) noexcept {
  balancer_.on_connect_start(server);
  holds_slot_ = true;
  summary_.server = server;
  phase_ = Phase::Connecting;
  connect_started_ = now;
  connect_cancelled_ = false;
  header_len_ = header_sent_ = 0;
  SessionAction a = act(SessionAction::Kind::Connect, Side::Server);
  a.server = server;
  out.push(a);
}

void TcpSession::on_dispatch(ServerIndex server, SteadyTime now, SessionActions& out) noexcept {
  if (phase_ != Phase::Queued) return;  // the slot was never taken: nothing to give back
  summary_.queue_time = now - queued_at_;
  ticket_ = {};
  connect_to(server, now, out);
}

void TcpSession::on_connect(int32_t result, SteadyTime now, SessionActions& out) noexcept {
  if (phase_ != Phase::Connecting) return;
  if (connect_cancelled_) {
    connect_failed(PassiveEventKind::ConnectTimeout, 0, now, out);
    return;
  }
  if (result < 0) {
    connect_failed(connect_failure_kind(result), -result, now, out);
    return;
  }
  phase_ = Phase::Relaying;
  summary_.connect_time = now - connect_started_;
  last_activity_[static_cast<size_t>(Side::Server)] = now;
  SessionAction connected = act(SessionAction::Kind::Connected, Side::Server);
  connected.server = *summary_.server;
  out.push(connected);
  if (header_len_ > 0) {
    SessionAction send = act(SessionAction::Kind::Send, Side::Server);
    send.data = header_.data();
    send.len = header_len_;
    out.push(send);
  } else {
    flush_to_server(now, out);
  }
  out.push(act(SessionAction::Kind::Recv, Side::Server));
}

void TcpSession::connect_failed(PassiveEventKind kind, int32_t error, SteadyTime now, SessionActions& out) noexcept {
  ServerIndex server = *summary_.server;
  SessionAction report = act(SessionAction::Kind::Report, Side::Server);
  report.server = server;
  report.event = kind;
  report.error = error;
  out.push(report);
  out.push(act(SessionAction::Kind::DropServer, Side::Server));
  release_slot(now, out);
  ++summary_.failed_connects;
  switch (retry_action(summary_.failed_connects, options_.retries, options_.redispatch)) {
    case RetryAction::GiveUp:
      finish(kind == PassiveEventKind::ConnectTimeout ? EndCause::ServerTimeout : EndCause::ServerAbort,
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

void TcpSession::release_slot(SteadyTime now, SessionActions& out) noexcept {
  if (!holds_slot_) return;
  holds_slot_ = false;
  if (auto h = balancer_.on_connection_end(*summary_.server, now)) {
    SessionAction a = act(SessionAction::Kind::Handoff);
    a.handoff = *h;
    out.push(a);
  }
}

// The server can take client bytes (connected, header sent): send what waits, or pass on
// the client's end of stream.
void TcpSession::flush_to_server(SteadyTime now, SessionActions& out) noexcept {
  if (up_.len > up_.sent) {
    forward(Side::Server, out);
  } else if (up_.eof && !up_.shut) {
    out.push(act(SessionAction::Kind::ShutdownWrite, Side::Server));
    up_.shut = true;
    maybe_done(now, out);
  }
}

void TcpSession::forward(Side to, SessionActions& out) noexcept {
  Direction& d = from(other(to));
  SessionAction a = act(SessionAction::Kind::Send, to);
  a.data = d.buffer.data + d.sent;
  a.len = d.len - d.sent;
  out.push(a);
}

void TcpSession::on_recv(Side side, int32_t result, IoBuffer buffer, SteadyTime now, SessionActions& out) noexcept {
  Direction& d = from(side);
  if (phase_ == Phase::Finished) {
    if (buffer.valid()) {
      SessionAction release = act(SessionAction::Kind::Release, side);
      release.buffer = buffer;
      out.push(release);
    }
    return;
  }
  if (result > 0) {
    last_activity_[static_cast<size_t>(side)] = now;
    d.buffer = buffer;
    d.len = static_cast<uint32_t>(result);
    d.sent = 0;
    if (side == Side::Client) {
      summary_.bytes_from_client += d.len;
      if (server_writable()) forward(Side::Server, out);
    } else {
      forward(Side::Client, out);
    }
    return;
  }
  if (result == 0) {
    d.eof = true;
    if (side == Side::Client) {
      if (server_writable()) flush_to_server(now, out);
    } else {
      out.push(act(SessionAction::Kind::ShutdownWrite, Side::Client));
      d.shut = true;
      maybe_done(now, out);
    }
    return;
  }
  broken(side, result, now, out);
}

void TcpSession::on_send(Side side, int32_t result, SteadyTime now, SessionActions& out) noexcept {
  if (phase_ == Phase::Finished) return;
  if (result <= 0) {
    broken(side, result < 0 ? result : -EPIPE, now, out);
    return;
  }
  last_activity_[static_cast<size_t>(side)] = now;
  if (side == Side::Server && header_sent_ < header_len_) {
    header_sent_ += static_cast<uint32_t>(result);
    if (header_sent_ < header_len_) {
      SessionAction a = act(SessionAction::Kind::Send, Side::Server);
      a.data = header_.data() + header_sent_;
      a.len = header_len_ - header_sent_;
      out.push(a);
    } else {
      flush_to_server(now, out);
    }
    return;
  }
  Direction& d = from(other(side));
  d.sent += static_cast<uint32_t>(result);
  if (side == Side::Client) summary_.bytes_to_client += static_cast<uint32_t>(result);
  if (d.sent < d.len) {
    forward(side, out);
    return;
  }
  SessionAction release = act(SessionAction::Kind::Release, side);
  release.buffer = d.buffer;
  out.push(release);
  d.buffer = {};
  d.len = d.sent = 0;
  if (d.eof) {
    out.push(act(SessionAction::Kind::ShutdownWrite, side));
    d.shut = true;
    maybe_done(now, out);
  } else {
    out.push(act(SessionAction::Kind::Recv, other(side)));
  }
}

void TcpSession::broken(Side side, int32_t error, SteadyTime now, SessionActions& out) noexcept {
  if (error == -ENOMEM || error == -ENOBUFS) {
    finish(EndCause::Proxy, current_phase(), ErrorKind::ProxyError, now, out);
    return;
  }
  if (side == Side::Client) {
    finish(EndCause::ClientAbort, current_phase(), ErrorKind::ClientReset, now, out);
    return;
  }
  SessionAction report = act(SessionAction::Kind::Report, Side::Server);
  report.server = summary_.server.value_or(0);
  report.event = PassiveEventKind::Reset;
  report.error = -error;
  out.push(report);
  finish(EndCause::ServerAbort, EndPhase::Data, ErrorKind::ServerReset, now, out);
}

void TcpSession::maybe_done(SteadyTime now, SessionActions& out) noexcept {
  if (up_.shut && down_.shut) finish(EndCause::Normal, EndPhase::None, std::nullopt, now, out);
}

void TcpSession::on_timer(SteadyTime now, SessionActions& out) noexcept {
  const SessionTimeouts& t = options_.timeouts;
  switch (phase_) {
    case Phase::Idle:
    case Phase::Finished:
      return;
    case Phase::Queued:
      if (expired(t.queue, queued_at_, now)) {
        summary_.queue_time = now - queued_at_;
        finish(EndCause::ServerTimeout, EndPhase::Queue, ErrorKind::QueueTimeout, now, out);
      }
      return;
    case Phase::Connecting:
      if (!connect_cancelled_ && expired(t.connect, connect_started_, now)) {
        connect_cancelled_ = true;
        out.push(act(SessionAction::Kind::CancelConnect, Side::Server));
      }
      return;
    case Phase::Relaying: {
      SteadyTime client_last = last_activity_[static_cast<size_t>(Side::Client)];
      SteadyTime server_last = last_activity_[static_cast<size_t>(Side::Server)];
      if (t.idle.count() > 0) {
        if (expired(t.idle, std::max(client_last, server_last), now)) {
          // Blame the side that has been quiet longer.
          finish(client_last <= server_last ? EndCause::ClientTimeout : EndCause::ServerTimeout, EndPhase::Data,
                 ErrorKind::IdleTimeout, now, out);
        }
        return;
      }
      if (expired(t.client, client_last, now)) {
        finish(EndCause::ClientTimeout, EndPhase::Data, ErrorKind::ClientTimeout, now, out);
      } else if (expired(t.server, server_last, now)) {
        finish(EndCause::ServerTimeout, EndPhase::Data, ErrorKind::ServerTimeout, now, out);
      }
      return;
    }
  }
}

std::optional<SteadyTime> TcpSession::deadline() const noexcept {
  const SessionTimeouts& t = options_.timeouts;
  switch (phase_) {
    case Phase::Idle:
    case Phase::Finished:
      return std::nullopt;
    case Phase::Queued:
      if (t.queue.count() <= 0) return std::nullopt;
      return queued_at_ + t.queue;
    case Phase::Connecting:
      if (connect_cancelled_ || t.connect.count() <= 0) return std::nullopt;
      return connect_started_ + t.connect;
    case Phase::Relaying: {
      SteadyTime client_last = last_activity_[static_cast<size_t>(Side::Client)];
      SteadyTime server_last = last_activity_[static_cast<size_t>(Side::Server)];
      if (t.idle.count() > 0) return std::max(client_last, server_last) + t.idle;
      std::optional<SteadyTime> at;
      if (t.client.count() > 0) at = client_last + t.client;
      if (t.server.count() > 0) {
        SteadyTime s = server_last + t.server;
        if (!at || s < *at) at = s;
      }
      return at;
    }
  }
  return std::nullopt;
}

void TcpSession::kill(SteadyTime now, SessionActions& out) noexcept {
  finish(EndCause::Killed, current_phase(), std::nullopt, now, out);
}

EndPhase TcpSession::current_phase() const noexcept {
  switch (phase_) {
    case Phase::Queued: return EndPhase::Queue;
    case Phase::Idle:
    case Phase::Connecting: return EndPhase::Connect;
    case Phase::Relaying:
    case Phase::Finished: return EndPhase::Data;
  }
  return EndPhase::Data;
}

void TcpSession::finish(EndCause cause, EndPhase phase, std::optional<ErrorKind> error, SteadyTime now,
                        SessionActions& out) noexcept {
  if (phase_ == Phase::Finished) return;
  if (phase_ == Phase::Queued) balancer_.cancel(ticket_);
  release_slot(now, out);
  phase_ = Phase::Finished;
  summary_.cause = cause;
  summary_.phase = phase;
  summary_.error = error;
  summary_.total_time = now - accepted_;
  out.push(act(SessionAction::Kind::Finish));
}

}  // namespace hafront::proxy
