// Helpers for the probe tests: scripted TCP servers on 127.0.0.1 that run on the test's
// own io_context (the same loop as the probe under test), and a runner that starts one
// probe, turns the loop until it completes and checks it completed exactly once and never
// from inside start_probe().
#pragma once

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <boost/asio.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/units.h"
#include "health/probe.h"

namespace hafront::health::test {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Socket = std::shared_ptr<tcp::socket>;

// Accepts connections on 127.0.0.1:<ephemeral> and hands each to `on_connection`. Keeps
// every accepted socket open until it is destroyed (so "never answer" is just doing nothing).
class TestServer {
 public:
  using Handler = std::function<void(Socket)>;
  TestServer(asio::io_context& io, Handler on_connection)
      : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), handler_(std::move(on_connection)) {
    accept();
  }
  ~TestServer() {
    boost::system::error_code ec;
    acceptor_.close(ec);
    for (auto& s : sockets_) s->close(ec);
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int accepted() const { return accepted_; }

 private:
  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket s) {
      if (ec) return;
      ++accepted_;
      auto sock = std::make_shared<tcp::socket>(std::move(s));
      sockets_.push_back(sock);
      handler_(sock);
      accept();
    });
  }
  tcp::acceptor acceptor_;
  Handler handler_;
  std::vector<Socket> sockets_;
  int accepted_ = 0;
};

// Reads the request head (up to the blank line) into *request, then calls then().
inline void read_request(Socket s, std::shared_ptr<std::string> request, std::function<void()> then) {
  asio::async_read_until(*s, asio::dynamic_buffer(*request, 64 * 1024), "\r\n\r\n",
                         [s, request, then](boost::system::error_code ec, size_t) {
                           if (!ec) then();
                         });
}

// Writes `bytes`, then closes our side for sending (the client sees EOF after it).
inline void write_and_close(Socket s, std::string bytes) {
  auto data = std::make_shared<std::string>(std::move(bytes));
  asio::async_write(*s, asio::buffer(*data), [s, data](boost::system::error_code, size_t) {
    boost::system::error_code ignored;
    s->shutdown(tcp::socket::shutdown_send, ignored);
  });
}

// A server that answers every request with `response` and records the requests.
struct HttpResponder {
  explicit HttpResponder(asio::io_context& io, std::string response)
      : server(io, [this, r = std::move(response)](Socket s) {
          auto req = std::make_shared<std::string>();
          read_request(s, req, [this, s, req, r] {
            requests.push_back(*req);
            write_and_close(s, r);
          });
        }) {}
  TestServer server;
  std::vector<std::string> requests;
};

inline std::string http_response(int status, const std::string& body, const std::string& extra_headers = "") {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n" + extra_headers + "\r\n" + body;
}

inline config::Endpoint loopback(uint16_t port) {
  config::Endpoint e;
  e.address = *config::parse_address("127.0.0.1");
  e.port = port;
  return e;
}

// A port on 127.0.0.1 where nothing listens (bound, then released).
inline uint16_t closed_port(asio::io_context& io) {
  tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  uint16_t p = a.local_endpoint().port();
  a.close();
  return p;
}

// A listener that accepts nothing and whose queue is full: a further connect gets no
// SYN-ACK and hangs until the client gives up (a server too busy to accept, on loopback).
class FullListener {
 public:
  explicit FullListener(asio::io_context& io)
      : acceptor_(io) {
    acceptor_.open(tcp::v4());
    acceptor_.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    acceptor_.listen(0);
    // backlog 0 holds one connection; a couple more fill whatever the kernel rounds it to.
    for (int i = 0; i < 3; ++i) {
      auto s = std::make_shared<tcp::socket>(io);
      s->open(tcp::v4());
      s->non_blocking(true);
      // A plain non-blocking connect(): Asio's synchronous connect would wait for it.
      auto ep = acceptor_.local_endpoint();
      (void)::connect(s->native_handle(), ep.data(), static_cast<socklen_t>(ep.size()));
      fillers_.push_back(s);
    }
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  tcp::acceptor acceptor_;
  std::vector<Socket> fillers_;
};

struct ProbeRunResult {
  Observation obs;
  int calls = 0;
};

// Starts one probe and turns the loop until it completes (at most `limit`, a safety net
// far beyond any probe's time-out; the tests assert outcomes, not durations). Then turns
// the loop a little more to see that the completion is not called again.
inline ProbeRunResult run_probe(asio::io_context& io, const config::Check& check, const ProbeTarget& target,
                                std::chrono::seconds limit = std::chrono::seconds(20)) {
  ProbeRunResult r;
  std::optional<Observation> got;
  auto probe = start_probe(io, check, target, [&](Observation o) {
    ++r.calls;
    got = std::move(o);
  });
  EXPECT_EQ(r.calls, 0) << "completion called from inside start_probe()";
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!got && std::chrono::steady_clock::now() < deadline) {
    if (io.stopped()) io.restart();  // a loop that ran out of work stays stopped otherwise
    io.run_one_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(got.has_value()) << "the probe did not complete";
  // Whatever the probe still has pending (aborted waits, a child being reaped) runs now.
  for (int i = 0; i < 20; ++i) {
    if (io.stopped()) io.restart();
    io.run_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(r.calls, got ? 1 : 0);
  probe.reset();
  io.restart();
  io.poll();
  EXPECT_LE(r.calls, 1);
  if (got) r.obs = std::move(*got);
  return r;
}

inline ProbeTarget target_at(uint16_t port) {
  ProbeTarget t;
  t.service = "svc";
  t.server = "srv-1";
  t.address = loopback(port);
  return t;
}

inline config::Check check_of(config::CheckKind kind, std::chrono::milliseconds timeout) {
  config::Check c;
  c.name = "test";
  c.kind = kind;
  c.timeout = timeout;
  c.interval = std::chrono::milliseconds(10000);
  return c;
}

}  // namespace hafront::health::test
