// The tcp check: a connection is accepted. Nothing is sent; the connection is closed at
// once (the server sees a connect and an EOF, like HAProxy's plain `check`).
#include <boost/asio/ip/tcp.hpp>

#include "config/units.h"
#include "health/probe_impl.h"

namespace hafront::health::detail {

namespace {

class TcpProbe final : public ProbeBase {
 public:
  TcpProbe(asio::io_context& io, const config::Check& check, const config::Endpoint& endpoint, ProbeDone done)
      : ProbeBase(io, check, std::move(done)), endpoint_(to_asio(endpoint)), socket_(io) {}

 private:
  void begin() override {
    auto self = std::static_pointer_cast<TcpProbe>(shared_from_this());
    socket_.async_connect(endpoint_, [self](boost::system::error_code ec) {
      if (!self->live()) return;
      if (ec) return self->finish(failed(ProbeRun::Unreachable, connect_failure(ec)));
      Observation o;
      o.ok = true;
      o.reason = "connected";
      self->finish(std::move(o));
    });
  }

  void close() override {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

  void on_deadline() override {
    finish(failed(ProbeRun::TimedOut, "connect timed out after " + config::format_duration(timeout_)));
  }

  asio::ip::tcp::endpoint endpoint_;
  asio::ip::tcp::socket socket_;
};

}  // namespace

std::shared_ptr<ProbeBase> make_tcp_probe(asio::io_context& io, const config::Check& check,
                                          const config::Endpoint& endpoint, ProbeDone done) {
  return std::make_shared<TcpProbe>(io, check, endpoint, std::move(done));
}

}  // namespace hafront::health::detail
