#include "health/probe.h"

#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <cctype>

#include "config/units.h"
#include "health/probe_impl.h"

namespace hafront::health {

const char* to_string(ProbeRun r) {
  switch (r) {
    case ProbeRun::Answered: return "answered";
    case ProbeRun::Unreachable: return "unreachable";
    case ProbeRun::TimedOut: return "timed-out";
    case ProbeRun::LocalError: return "local-error";
  }
  return "?";
}

config::Endpoint probe_endpoint(const config::Check& check, const ProbeTarget& target) {
  config::Endpoint e = target.address;
  if (check.port) e.port = *check.port;
  return e;
}

namespace detail {

ProbeBase::ProbeBase(asio::io_context& io, const config::Check& check, ProbeDone done)
    : io_(io), timeout_(check.timeout), done_(std::move(done)), deadline_(io) {}

void ProbeBase::start() {
  started_ = Clock::now();
  deadline_.expires_after(timeout_);
  deadline_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec && self->live()) self->on_deadline();
  });
  begin();
}

void ProbeBase::cancel() {
  if (!live()) return;
  done_ = nullptr;
  deadline_.cancel();
  if (!closed_) {
    closed_ = true;
    close();
  }
}

void ProbeBase::finish(Observation o) {
  if (!live()) return;
  auto done = std::move(done_);
  done_ = nullptr;
  deadline_.cancel();
  if (!closed_) {
    closed_ = true;
    close();
  }
  o.duration = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_);
  // The completion may destroy the handle (and cancel us): we are kept alive by the handler
  // that called finish(), and cancel() is a no-op now.
  done(std::move(o));
}

void ProbeBase::finish_soon(Observation o) {
  asio::post(io_, [self = shared_from_this(), o = std::move(o)]() mutable { self->finish(std::move(o)); });
}

std::string ProbeBase::timeout_reason(std::string_view phase) const {
  return "timed out after " + config::format_duration(timeout_) + " " + std::string(phase);
}

Observation ProbeBase::timed_out(std::string_view phase) const {
  return failed(ProbeRun::TimedOut, timeout_reason(phase));
}

Observation failed(ProbeRun run, std::string reason) {
  Observation o;
  o.ok = false;
  o.run = run;
  o.reason = std::move(reason);
  return o;
}

asio::ip::tcp::endpoint to_asio(const config::Endpoint& e) {
  asio::ip::address a;
  if (e.address.is_v6()) {
    asio::ip::address_v6::bytes_type b;
    std::copy(e.address.bytes.begin(), e.address.bytes.end(), b.begin());
    a = asio::ip::address_v6(b);
  } else {
    asio::ip::address_v4::bytes_type b;
    std::copy(e.address.bytes.begin(), e.address.bytes.begin() + 4, b.begin());
    a = asio::ip::address_v4(b);
  }
  return {a, e.port};
}

std::string connect_failure(const boost::system::error_code& ec) {
  namespace err = asio::error;
  if (ec == err::connection_refused) return "connect refused";
  if (ec == err::host_unreachable) return "no route to host";
  if (ec == err::network_unreachable) return "network unreachable";
  if (ec == err::timed_out) return "connect timed out in the kernel";
  if (ec == err::connection_reset) return "connection reset while connecting";
  if (ec == err::no_descriptors) return "connect: out of file descriptors";
  if (ec == boost::system::errc::address_not_available) return "connect: no local address to connect from";
  if (ec == boost::system::errc::permission_denied || ec == boost::system::errc::operation_not_permitted) {
    return "connect refused by a local firewall rule";
  }
  std::string m = ec.message();
  if (!m.empty()) m[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(m[0])));
  return "connect: " + m;
}

namespace {

// The handle the monitor holds: cancelling (or dropping) it abandons the probe.
class ProbeHandle final : public Probe {
 public:
  explicit ProbeHandle(std::shared_ptr<ProbeBase> impl) : impl_(std::move(impl)) {}
  ~ProbeHandle() override { impl_->cancel(); }
  void cancel() override { impl_->cancel(); }

 private:
  std::shared_ptr<ProbeBase> impl_;
};

}  // namespace
}  // namespace detail

std::unique_ptr<Probe> start_probe(boost::asio::io_context& io, const config::Check& check, const ProbeTarget& target,
                                   ProbeDone done) {
  config::Endpoint endpoint = probe_endpoint(check, target);
  std::shared_ptr<detail::ProbeBase> impl;
  switch (check.kind) {
    case config::CheckKind::Tcp: impl = detail::make_tcp_probe(io, check, endpoint, std::move(done)); break;
    case config::CheckKind::Http: impl = detail::make_http_probe(io, check, endpoint, std::move(done)); break;
    case config::CheckKind::Mysql: impl = detail::make_mysql_probe(io, check, endpoint, std::move(done)); break;
    case config::CheckKind::Exec:
      impl = detail::make_exec_probe(io, check, target, endpoint, std::move(done));
      break;
  }
  impl->start();
  return std::make_unique<detail::ProbeHandle>(std::move(impl));
}

}  // namespace hafront::health
