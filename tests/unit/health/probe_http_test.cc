// The http check against scripted in-process servers on 127.0.0.1: statuses, bodies,
// regexes, JSON, every phase timing out, garbage, a gigabyte-long body, resets, and a TLS
// handshake with something that does not speak TLS.
#include <gtest/gtest.h>

#include <atomic>

#include "probe_test_server.h"

namespace hafront::health {
namespace {

using namespace std::chrono_literals;
using namespace test;

config::Check http_check(const std::string& path = "/v3", std::chrono::milliseconds timeout = 300ms) {
  auto c = check_of(config::CheckKind::Http, timeout);
  c.http.path = path;
  return c;
}

TEST(HttpProbe, PassesAndSendsAProperRequest) {
  asio::io_context io;
  HttpResponder srv(io, http_response(200, R"({"version": {"id": "v3.14", "status": "stable"}})"));
  auto check = http_check();
  check.http.expect_body = "\"id\": \"v3";
  check.http.headers = {{"X-Probe", "hafront"}};
  auto r = run_probe(io, check, target_at(srv.server.port()));
  EXPECT_TRUE(r.obs.ok) << r.obs.reason;
  EXPECT_EQ(r.obs.run, ProbeRun::Answered);
  EXPECT_EQ(r.obs.reason, "HTTP 200 from GET /v3");
  EXPECT_EQ(r.obs.http_status, 200);
  EXPECT_EQ(r.obs.body_excerpt, R"({"version": {"id": "v3.14", "status": "stable"}})");
  ASSERT_EQ(srv.requests.size(), 1u);
  const std::string& req = srv.requests[0];
  EXPECT_EQ(req.rfind("GET /v3 HTTP/1.1\r\n", 0), 0u) << req;
  EXPECT_NE(req.find("Host: 127.0.0.1:" + std::to_string(srv.server.port()) + "\r\n"), std::string::npos) << req;
  EXPECT_NE(req.find("Connection: close\r\n"), std::string::npos) << req;
  EXPECT_NE(req.find("X-Probe: hafront\r\n"), std::string::npos) << req;
}

TEST(HttpProbe, HostMethodAndCheckPort) {
  asio::io_context io;
  HttpResponder srv(io, "HTTP/1.1 204 No Content\r\n\r\n");
  auto check = http_check("/healthcheck");
  check.http.method = "OPTIONS";
  check.http.host = "keystone.example:5000";
  check.http.expect_status = {204};
  check.port = srv.server.port();
  auto r = run_probe(io, check, target_at(closed_port(io)));
  EXPECT_TRUE(r.obs.ok) << r.obs.reason;
  ASSERT_EQ(srv.requests.size(), 1u);
  EXPECT_EQ(srv.requests[0].rfind("OPTIONS /healthcheck HTTP/1.1\r\n", 0), 0u);
  EXPECT_NE(srv.requests[0].find("Host: keystone.example:5000\r\n"), std::string::npos);
}

TEST(HttpProbe, HeadRequestWithContentLengthAndNoBody) {
  asio::io_context io;
  HttpResponder srv(io, "HTTP/1.1 200 OK\r\nContent-Length: 12345\r\n\r\n");
  auto check = http_check("/");
  check.http.method = "HEAD";
  auto r = run_probe(io, check, target_at(srv.server.port()));
  EXPECT_TRUE(r.obs.ok) << r.obs.reason;
}

TEST(HttpProbe, Status503) {
  asio::io_context io;
  HttpResponder srv(io, http_response(503, "<html>Service Unavailable</html>"));
  auto r = run_probe(io, http_check(), target_at(srv.server.port()));
  EXPECT_FALSE(r.obs.ok);
  EXPECT_EQ(r.obs.run, ProbeRun::Answered);
  EXPECT_EQ(r.obs.reason, "HTTP 503 from GET /v3");
  EXPECT_EQ(r.obs.http_status, 503);
  EXPECT_EQ(r.obs.body_excerpt, "<html>Service Unavailable</html>");
}

TEST(HttpProbe, WrongBody) {
  asio::io_context io;
  HttpResponder srv(io, http_response(200, R"({"version": {"id": "v2.0"}})"));
  auto check = http_check();
  check.http.expect_body = "\"id\": \"v3";
  auto r = run_probe(io, check, target_at(srv.server.port()));
  EXPECT_FALSE(r.obs.ok);
  EXPECT_EQ(r.obs.reason, R"(body lacks "\"id\": \"v3")");
  EXPECT_EQ(r.obs.http_status, 200);
}

TEST(HttpProbe, ChunkedBodyAndRegex) {
  asio::io_context io;
  HttpResponder srv(io, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "7\r\nstatus=\r\n5\r\nready\r\n0\r\n\r\n");
  auto check = http_check("/");
  check.http.expect_body_regex = "^status=(ready|ok)$";
  auto r = run_probe(io, check, target_at(srv.server.port()));
  EXPECT_TRUE(r.obs.ok) << r.obs.reason;
  check.http.expect_body_regex = "^status=ok$";
  HttpResponder srv2(io, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nstatus=ready");  // body ends at EOF
  auto r2 = run_probe(io, check, target_at(srv2.server.port()));
  EXPECT_FALSE(r2.obs.ok);
  EXPECT_EQ(r2.obs.reason, "body does not match /^status=ok$/");
}

TEST(HttpProbe, JsonField) {
  asio::io_context io;
  HttpResponder srv(io, http_response(200, R"({"version": {"status": "deprecated"}})"));
  auto check = http_check();
  check.http.expect_json = config::JsonExpect{"/version/status", "stable"};
  auto r = run_probe(io, check, target_at(srv.server.port()));
  EXPECT_FALSE(r.obs.ok);
  EXPECT_EQ(r.obs.reason, R"(JSON /version/status is "deprecated", want "stable")");
}

TEST(HttpProbe, Refused) {
  asio::io_context io;
  auto r = run_probe(io, http_check(), target_at(closed_port(io)));
  EXPECT_FALSE(r.obs.ok);
  EXPECT_EQ(r.obs.run, ProbeRun::Unreachable);
  EXPECT_EQ(r.obs.reason, "connect refused");
}

TEST(HttpProbe, TimesOutConnecting) {
  asio::io_context io;
  FullListener full(io);
  auto r = run_probe(io, http_check("/v3", 200ms), target_at(full.port()));
  EXPECT_EQ(r.obs.run, ProbeRun::TimedOut);
  EXPECT_EQ(r.obs.reason, "timed out after 200ms connecting");
}

TEST(HttpProbe, AcceptsAndNeverAnswers) {
  asio::io_context io;
  TestServer server(io, [](Socket) {});  // reads nothing, says nothing
  auto r = run_probe(io, http_check("/v3", 200ms), target_at(server.port()));
  EXPECT_FALSE(r.obs.ok);
  EXPECT_EQ(r.obs.run, ProbeRun::TimedOut);
  EXPECT_EQ(r.obs.reason, "timed out after 200ms waiting for the response head");
}

TEST(HttpProbe, SlowBody) {
  asio::io_context io;
  TestServer server(io, [](Socket s) {
    auto req = std::make_shared<std::string>();
    read_request(s, req, [s] {
      auto head = std::make_shared<std::string>("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst part");
      asio::async_write(*s, asio::buffer(*head), [s, head](boost::system::error_code, size_t) {});  // then stall
    });
  });
  auto r = run_probe(io, http_check("/v3", 200ms), target_at(server.port()));
  EXPECT_EQ(r.obs.run, ProbeRun::TimedOut);
  EXPECT_EQ(r.obs.reason, "timed out after 200ms reading the body");
}

TEST(HttpProbe, ClosedBeforeAnswering) {
  asio::io_context io;
  TestServer server(io, [](Socket s) {
    auto req = std::make_shared<std::string>();
    read_request(s, req, [s] { s->shutdown(tcp::socket::shutdown_send); });
  });
  auto r = run_probe(io, http_check(), target_at(server.port()));
  EXPECT_FALSE(r.obs.ok);
  EXPECT_EQ(r.obs.run, ProbeRun::Unreachable);
  EXPECT_EQ(r.obs.reason, "server closed the connection before answering");
}

TEST(HttpProbe, ClosedInTheMiddleOfTheBody) {
  asio::io_context io;
  HttpResponder srv(io, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this");
  auto r = run_probe(io, http_check(), target_at(srv.server.port()));
  EXPECT_FALSE(r.obs.ok);
  EXPECT_EQ(r.obs.reason, "server closed the connection in the middle of the body");
  EXPECT_EQ(r.obs.http_status, 200);
  EXPECT_EQ(r.obs.body_excerpt, "only this");
}

TEST(HttpProbe, ResetInTheMiddleOfTheResponse) {
  asio::io_context io;
  TestServer server(io, [](Socket s) {
    auto req = std::make_shared<std::string>();
    read_request(s, req, [s] {
      auto part = std::make_shared<std::string>("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" +
                                                std::string(1000, 'x'));
      asio::async_write(*s, asio::buffer(*part), [s, part](boost::system::error_code, size_t) {
        s->set_option(asio::socket_base::linger(true, 0));  // close with RST
        s->close();
      });
    });
  });
  auto r = run_probe(io, http_check(), target_at(server.port()));
  EXPECT_FALSE(r.obs.ok);
  EXPECT_EQ(r.obs.run, ProbeRun::Unreachable);
  // The RST may overtake the data on the client side: either way the reason says so.
  EXPECT_TRUE(r.obs.reason == "connection reset by the server reading the body" ||
              r.obs.reason == "connection reset by the server waiting for the response head")
      << r.obs.reason;
}

TEST(HttpProbe, GarbageResponse) {
  asio::io_context io;
  HttpResponder srv(io, "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n\r\n");
  auto r = run_probe(io, http_check(), target_at(srv.server.port()));
  EXPECT_FALSE(r.obs.ok);
  EXPECT_EQ(r.obs.run, ProbeRun::Unreachable);
  EXPECT_EQ(r.obs.reason.rfind("invalid response: ", 0), 0u) << r.obs.reason;
  EXPECT_EQ(r.obs.body_excerpt.rfind("SSH-2.0-OpenSSH_9.2p1", 0), 0u) << r.obs.body_excerpt;
  EXPECT_FALSE(r.obs.http_status.has_value());
}

TEST(HttpProbe, HeadLargerThan16KiB) {
  asio::io_context io;
  HttpResponder srv(io, "HTTP/1.1 200 OK\r\nX-Big: " + std::string(20000, 'b') + "\r\nContent-Length: 0\r\n\r\n");
  auto r = run_probe(io, http_check(), target_at(srv.server.port()));
  EXPECT_FALSE(r.obs.ok);
  EXPECT_EQ(r.obs.reason, "invalid response: head larger than 16 KiB");
}

// Sends a head, then body bytes until the client goes away; counts what it wrote.
struct EndlessBody {
  EndlessBody(asio::io_context& io, std::string head)
      : server(io, [this, h = std::move(head)](Socket s) {
          auto req = std::make_shared<std::string>();
          read_request(s, req, [this, s, h] {
            auto data = std::make_shared<std::string>(h);
            asio::async_write(*s, asio::buffer(*data), [this, s, data](boost::system::error_code ec, size_t) {
              if (!ec) pump(s);
            });
          });
        }) {}
  void pump(Socket s) {
    asio::async_write(*s, asio::buffer(chunk), [this, s](boost::system::error_code ec, size_t n) {
      written += n;
      if (ec || written > (1ull << 30)) {
        done = true;
        return;
      }
      pump(s);
    });
  }
  std::string chunk = std::string(64 * 1024, 'x');
  uint64_t written = 0;
  bool done = false;
  TestServer server;
};

TEST(HttpProbe, GigabyteBodyIsNotRead) {
  for (const std::string head : {"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n",
                                 "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"}) {
    asio::io_context io;
    EndlessBody srv(io, head);
    // Status only: decided on what was read.
    auto r = run_probe(io, http_check("/big", 300ms), target_at(srv.server.port()));
    EXPECT_TRUE(r.obs.ok) << r.obs.reason;
    EXPECT_EQ(r.obs.http_status, 200);
    EXPECT_EQ(r.obs.body_excerpt, std::string(256, 'x'));
    // The server could only fill the socket buffers before the probe closed.
    for (int i = 0; i < 100 && !srv.done; ++i) io.run_for(10ms);
    EXPECT_TRUE(srv.done);
    EXPECT_LT(srv.written, 64ull << 20) << head;
  }
}

TEST(HttpProbe, GigabyteChunkedBodyWithABodyCheckFails) {
  asio::io_context io;
  // One endless chunk: its size line promises more than we keep.
  EndlessBody srv(io, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3B9ACA00\r\n");
  auto check = http_check("/big");
  check.http.expect_body = "the end";
  auto r = run_probe(io, check, target_at(srv.server.port()));
  EXPECT_FALSE(r.obs.ok);
  EXPECT_EQ(r.obs.run, ProbeRun::Answered);
  EXPECT_EQ(r.obs.reason, "body larger than 64 KiB: its first 64 KiB lack \"the end\"");
}

TEST(HttpProbe, HttpsAgainstSomethingThatIsNotTls) {
  asio::io_context io;
  TestServer server(io, [](Socket s) { write_and_close(s, http_response(400, "plain http here")); });
  auto check = http_check();
  check.http.tls = true;
  auto r = run_probe(io, check, target_at(server.port()));
  EXPECT_FALSE(r.obs.ok);
  EXPECT_EQ(r.obs.run, ProbeRun::Unreachable);
  EXPECT_EQ(r.obs.reason.rfind("TLS handshake failed: ", 0), 0u) << r.obs.reason;
}

TEST(HttpProbe, HttpsHandshakeThatNeverCompletes) {
  asio::io_context io;
  TestServer server(io, [](Socket) {});
  auto check = http_check("/v3", 200ms);
  check.http.tls = true;
  check.http.tls_options.verify = false;
  auto r = run_probe(io, check, target_at(server.port()));
  EXPECT_EQ(r.obs.run, ProbeRun::TimedOut);
  EXPECT_EQ(r.obs.reason, "timed out after 200ms during the TLS handshake");
}

TEST(HttpProbe, UnreadableCaFileIsALocalError) {
  asio::io_context io;
  TestServer server(io, [](Socket) {});
  auto check = http_check();
  check.http.tls = true;
  check.http.tls_options.ca_file = "/nonexistent/ca.pem";
  auto r = run_probe(io, check, target_at(server.port()));
  EXPECT_FALSE(r.obs.ok);
  EXPECT_EQ(r.obs.run, ProbeRun::LocalError);
  EXPECT_EQ(r.obs.reason.rfind("cannot load CA file /nonexistent/ca.pem: ", 0), 0u) << r.obs.reason;
  EXPECT_EQ(server.accepted(), 0);
}

TEST(HttpProbe, CancelWhileWaitingForTheAnswer) {
  asio::io_context io;
  TestServer server(io, [](Socket) {});
  int calls = 0;
  auto probe = start_probe(io, http_check("/v3", 100ms), target_at(server.port()), [&](Observation) { ++calls; });
  auto until = std::chrono::steady_clock::now() + 5s;
  while (server.accepted() == 0 && std::chrono::steady_clock::now() < until) io.run_one_for(10ms);
  ASSERT_EQ(server.accepted(), 1);
  probe->cancel();
  io.run_for(300ms);
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace hafront::health
