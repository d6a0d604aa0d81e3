// The mysql check's own behaviour without a MariaDB server (tests/loopback/probe_galera.py
// runs it against a real Galera node): the password file read at probe time, refused
// connections, a server that accepts and never greets (the non-blocking connector driven
// by the loop, ended by the time-out without blocking it), garbage instead of a greeting,
// and cancel.
#include <gtest/gtest.h>

#include <fstream>

#include "probe_test_server.h"
#include "temp_dir.h"

namespace hafront::health {
namespace {

using namespace std::chrono_literals;
using namespace test;

config::Check mysql_check(std::optional<std::string> password_file, std::chrono::milliseconds timeout = 300ms) {
  auto c = check_of(config::CheckKind::Mysql, timeout);
  c.mysql.user = "hafront";
  if (password_file) c.mysql.password = config::SecretRef{*password_file};
  c.mysql.require.wsrep_local_state = 4;
  return c;
}

class MysqlProbeTest : public ::testing::Test {
 protected:
  std::string password_file(const std::string& content) {
    std::string p = (dir_.path / "galera.pw").string();
    std::ofstream(p) << content;
    return p;
  }
  test_support::TempDir dir_{"hafront-mysql-probe-"};
};

TEST_F(MysqlProbeTest, MissingPasswordFileIsALocalErrorNotACrash) {
  asio::io_context io;
  TestServer server(io, [](Socket) {});
  std::string missing = (dir_.path / "nope.pw").string();
  auto r = run_probe(io, mysql_check(missing), target_at(server.port()));
  EXPECT_FALSE(r.obs.ok);
  EXPECT_EQ(r.obs.run, ProbeRun::LocalError);
  EXPECT_EQ(r.obs.reason, "cannot read password file " + missing + ": No such file or directory");
  EXPECT_EQ(server.accepted(), 0);  // nothing was tried without the password
}

TEST_F(MysqlProbeTest, PasswordFileWithSeveralLinesIsRefused) {
  asio::io_context io;
  TestServer server(io, [](Socket) {});
  std::string p = password_file("s3cret-one\ns3cret-two\n");
  auto r = run_probe(io, mysql_check(p), target_at(server.port()));
  EXPECT_EQ(r.obs.run, ProbeRun::LocalError);
  EXPECT_EQ(r.obs.reason, "password file " + p + " holds more than one line");
  EXPECT_EQ(r.obs.reason.find("s3cret"), std::string::npos);
}

TEST_F(MysqlProbeTest, Refused) {
  asio::io_context io;
  auto r = run_probe(io, mysql_check(password_file("s3cret\n")), target_at(closed_port(io)));
  EXPECT_FALSE(r.obs.ok);
  EXPECT_EQ(r.obs.run, ProbeRun::Unreachable);
  EXPECT_EQ(r.obs.reason, "connect refused");
}

TEST_F(MysqlProbeTest, ServerThatNeverGreetsTimesOut) {
  asio::io_context io;
  TestServer server(io, [](Socket) {});
  auto r = run_probe(io, mysql_check(password_file("s3cret\n"), 200ms), target_at(server.port()));
  EXPECT_FALSE(r.obs.ok);
  EXPECT_EQ(r.obs.run, ProbeRun::TimedOut);
  EXPECT_EQ(r.obs.reason, "timed out after 200ms connecting");
  EXPECT_EQ(server.accepted(), 1);
}

TEST_F(MysqlProbeTest, TheLoopKeepsRunningWhileTheConnectorWaits) {
  // While the probe waits for a greeting, other work on the same loop goes on: nothing in
  // the connector blocks.
  asio::io_context io;
  TestServer server(io, [](Socket) {});
  int ticks = 0;
  asio::steady_timer ticker(io);
  std::function<void()> tick = [&] {
    ticker.expires_after(10ms);
    ticker.async_wait([&](boost::system::error_code ec) {
      if (ec) return;
      ++ticks;
      tick();
    });
  };
  tick();
  auto r = run_probe(io, mysql_check(password_file("s3cret\n"), 300ms), target_at(server.port()));
  ticker.cancel();
  EXPECT_EQ(r.obs.run, ProbeRun::TimedOut);
  EXPECT_GT(ticks, 5);
}

TEST_F(MysqlProbeTest, GarbageInsteadOfAGreeting) {
  asio::io_context io;
  TestServer server(io, [](Socket s) { write_and_close(s, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"); });
  auto r = run_probe(io, mysql_check(password_file("s3cret\n")), target_at(server.port()));
  EXPECT_FALSE(r.obs.ok);
  EXPECT_EQ(r.obs.run, ProbeRun::Unreachable);
  EXPECT_EQ(r.obs.reason.rfind("connect: ", 0), 0u) << r.obs.reason;
  EXPECT_EQ(r.obs.reason.find("s3cret"), std::string::npos);
}

TEST_F(MysqlProbeTest, ClosedWithoutAWord) {
  asio::io_context io;
  TestServer server(io, [](Socket s) { s->close(); });
  auto r = run_probe(io, mysql_check(password_file("s3cret\n")), target_at(server.port()));
  EXPECT_FALSE(r.obs.ok);
  EXPECT_EQ(r.obs.run, ProbeRun::Unreachable);
  EXPECT_EQ(r.obs.reason.rfind("connect: ", 0), 0u) << r.obs.reason;
}

TEST_F(MysqlProbeTest, CancelWhileConnectingCallsNothing) {
  asio::io_context io;
  TestServer server(io, [](Socket) {});
  int calls = 0;
  auto probe = start_probe(io, mysql_check(password_file("s3cret\n"), 100ms), target_at(server.port()),
                           [&](Observation) { ++calls; });
  auto until = std::chrono::steady_clock::now() + 5s;
  while (server.accepted() == 0 && std::chrono::steady_clock::now() < until) io.run_one_for(10ms);
  ASSERT_EQ(server.accepted(), 1);
  probe.reset();
  io.run_for(300ms);
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace hafront::health
