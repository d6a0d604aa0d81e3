#include "proxy/proxy_types.h"

namespace hafront::proxy {

const char* to_string(IoBackend b) { return b == IoBackend::IoUring ? "io_uring" : "epoll"; }

const char* to_string(Side s) { return s == Side::Client ? "client" : "server"; }

const char* to_string(PassiveEventKind k) {
  switch (k) {
    case PassiveEventKind::ConnectRefused: return "connect_refused";
    case PassiveEventKind::ConnectTimeout: return "connect_timeout";
    case PassiveEventKind::ConnectError: return "connect_error";
    case PassiveEventKind::Reset: return "reset";
    case PassiveEventKind::Http5xx: return "http_5xx";
  }
  return "?";
}

char code(EndCause c) {
  switch (c) {
    case EndCause::Normal: return '-';
    case EndCause::ClientAbort: return 'C';
    case EndCause::ServerAbort: return 'S';
    case EndCause::ClientTimeout: return 'c';
    case EndCause::ServerTimeout: return 's';
    case EndCause::Proxy: return 'P';
    case EndCause::Killed: return 'K';
  }
  return '?';
}

char code(EndPhase p) {
  switch (p) {
    case EndPhase::None: return '-';
    case EndPhase::Queue: return 'Q';
    case EndPhase::Connect: return 'C';
    case EndPhase::Data: return 'D';
    case EndPhase::Request: return 'R';
    case EndPhase::Header: return 'H';
  }
  return '?';
}

const char* to_string(ErrorKind k) {
  switch (k) {
    case ErrorKind::NoServer: return "no_server";
    case ErrorKind::QueueFull: return "queue_full";
    case ErrorKind::QueueTimeout: return "queue_timeout";
    case ErrorKind::ConnectRefused: return "connect_refused";
    case ErrorKind::ConnectTimeout: return "connect_timeout";
    case ErrorKind::ConnectError: return "connect_error";
    case ErrorKind::ClientTimeout: return "client_timeout";
    case ErrorKind::ServerTimeout: return "server_timeout";
    case ErrorKind::IdleTimeout: return "idle_timeout";
    case ErrorKind::ClientReset: return "client_reset";
    case ErrorKind::ServerReset: return "server_reset";
    case ErrorKind::Rejected: return "rejected";
    case ErrorKind::ProxyError: return "proxy_error";
    case ErrorKind::BadRequest: return "bad_request";
    case ErrorKind::RequestTimeout: return "request_timeout";
    case ErrorKind::BadResponse: return "bad_response";
  }
  return "?";
}

}  // namespace hafront::proxy
