// The tcp check against in-process listeners on 127.0.0.1, and what every probe promises:
// one completion, never from inside start_probe(), none after cancel() or destruction.
#include <gtest/gtest.h>

#include "probe_test_server.h"

namespace hafront::health {
namespace {

using namespace std::chrono_literals;
using namespace test;

TEST(TcpProbe, ConnectsToAListener) {
  asio::io_context io;
  TestServer server(io, [](Socket) {});
  auto r = run_probe(io, check_of(config::CheckKind::Tcp, 300ms), target_at(server.port()));
  EXPECT_TRUE(r.obs.ok);
  EXPECT_EQ(r.obs.run, ProbeRun::Answered);
  EXPECT_EQ(r.obs.reason, "connected");
  EXPECT_EQ(server.accepted(), 1);
}

TEST(TcpProbe, Refused) {
  asio::io_context io;
  auto r = run_probe(io, check_of(config::CheckKind::Tcp, 300ms), target_at(closed_port(io)));
  EXPECT_FALSE(r.obs.ok);
  EXPECT_EQ(r.obs.run, ProbeRun::Unreachable);
  EXPECT_EQ(r.obs.reason, "connect refused");
}

TEST(TcpProbe, TimesOutOnAListenerThatTakesNoMoreConnections) {
  asio::io_context io;
  FullListener full(io);
  auto r = run_probe(io, check_of(config::CheckKind::Tcp, 200ms), target_at(full.port()));
  EXPECT_FALSE(r.obs.ok);
  EXPECT_EQ(r.obs.run, ProbeRun::TimedOut);
  EXPECT_EQ(r.obs.reason, "connect timed out after 200ms");
}

TEST(TcpProbe, CheckPortReplacesTheServerPort) {
  asio::io_context io;
  TestServer server(io, [](Socket) {});
  auto check = check_of(config::CheckKind::Tcp, 300ms);
  check.port = server.port();
  ProbeTarget target = target_at(closed_port(io));  // the server's own port is closed
  EXPECT_EQ(probe_endpoint(check, target).port, server.port());
  auto r = run_probe(io, check, target);
  EXPECT_TRUE(r.obs.ok) << r.obs.reason;
}

TEST(TcpProbe, CancelBeforeCompletionCallsNothing) {
  asio::io_context io;
  FullListener full(io);
  int calls = 0;
  auto probe = start_probe(io, check_of(config::CheckKind::Tcp, 100ms), target_at(full.port()),
                           [&](Observation) { ++calls; });
  probe->cancel();
  io.run_for(300ms);  // well past the time-out
  EXPECT_EQ(calls, 0);
  probe->cancel();  // twice is fine
  probe.reset();
  io.run_for(10ms);
  EXPECT_EQ(calls, 0);
}

TEST(TcpProbe, DestroyingTheHandleCancels) {
  asio::io_context io;
  TestServer server(io, [](Socket) {});
  int calls = 0;
  auto probe = start_probe(io, check_of(config::CheckKind::Tcp, 100ms), target_at(server.port()),
                           [&](Observation) { ++calls; });
  probe.reset();
  io.run_for(300ms);
  EXPECT_EQ(calls, 0);
}

TEST(TcpProbe, TheCompletionMayDestroyItsProbe) {
  asio::io_context io;
  TestServer server(io, [](Socket) {});
  std::unique_ptr<Probe> probe;
  int calls = 0;
  probe = start_probe(io, check_of(config::CheckKind::Tcp, 300ms), target_at(server.port()), [&](Observation o) {
    ++calls;
    EXPECT_TRUE(o.ok);
    probe.reset();  // what a monitor may do
  });
  io.run_for(500ms);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(probe, nullptr);
}

TEST(TcpProbe, ManyAtOnce) {
  asio::io_context io;
  TestServer server(io, [](Socket) {});
  uint16_t closed = closed_port(io);
  int ok = 0, failed = 0;
  std::vector<std::unique_ptr<Probe>> probes;
  for (int i = 0; i < 50; ++i) {
    probes.push_back(start_probe(io, check_of(config::CheckKind::Tcp, 300ms), target_at(i % 2 ? server.port() : closed),
                                 [&](Observation o) { ++(o.ok ? ok : failed); }));
  }
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (ok + failed < 50 && std::chrono::steady_clock::now() < deadline) io.run_one_for(100ms);
  EXPECT_EQ(ok, 25);
  EXPECT_EQ(failed, 25);
}

}  // namespace
}  // namespace hafront::health
