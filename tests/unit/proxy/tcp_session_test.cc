// The TCP relay state machine, driven with fake completions and simulated time.
#include "proxy/tcp_session.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

namespace hafront::proxy {
namespace {

using Kind = SessionAction::Kind;
using std::chrono::milliseconds;

const SteadyTime t0{std::chrono::seconds(1000)};

ServerSpec srv(std::string name, uint32_t maxconn = 0, ServerState state = ServerState::Up) {
  ServerSpec s;
  s.name = std::move(name);
  s.maxconn = maxconn;
  s.state = state;
  return s;
}

SessionOptions options(uint32_t retries = 3, bool redispatch = true) {
  SessionOptions o;
  o.timeouts.connect = milliseconds(1000);
  o.timeouts.queue = milliseconds(2000);
  o.timeouts.client = milliseconds(30000);
  o.timeouts.server = milliseconds(40000);
  o.retries = retries;
  o.redispatch = redispatch;
  return o;
}

// Fake receive buffers: each completion gets a buffer of its own with the given bytes.
struct Buffers {
  std::vector<std::string> storage;
  IoBuffer make(const std::string& bytes) {
    storage.reserve(64);  // stable addresses for the test's few buffers
    storage.push_back(bytes);
    return IoBuffer{reinterpret_cast<uint8_t*>(storage.back().data()), static_cast<uint32_t>(storage.size())};
  }
};

std::string kinds(const SessionActions& a) {
  std::string out;
  for (const auto& x : a) {
    if (!out.empty()) out += ' ';
    switch (x.kind) {
      case Kind::Recv: out += std::string("Recv(") + to_string(x.side) + ")"; break;
      case Kind::Send: out += std::string("Send(") + to_string(x.side) + ")"; break;
      case Kind::Release: out += "Release"; break;
      case Kind::ShutdownWrite: out += std::string("Shut(") + to_string(x.side) + ")"; break;
      case Kind::Connect: out += "Connect(" + std::to_string(x.server) + ")"; break;
      case Kind::CancelConnect: out += "CancelConnect"; break;
      case Kind::DropServer: out += "DropServer"; break;
      case Kind::Report: out += std::string("Report(") + to_string(x.event) + ")"; break;
      case Kind::Connected: out += "Connected(" + std::to_string(x.server) + ")"; break;
      case Kind::Handoff: out += "Handoff(" + std::to_string(x.handoff.cookie) + ")"; break;
      case Kind::Finish: out += "Finish"; break;
    }
  }
  return out;
}

std::string bytes_of(const SessionAction& a) { return std::string(reinterpret_cast<const char*>(a.data), a.len); }

std::string end_code(const TcpSession& s) {
  return std::string{code(s.summary().cause), code(s.summary().phase)};
}

// A session that is connected to server 0 and relaying, with nothing in flight but the two
// receives.
struct Relaying {
  Balancer balancer{{srv("a"), srv("b")}, BalancerOptions{}};
  TcpSession session{balancer, options(), 1};
  Buffers buffers;
  SessionActions out;

  explicit Relaying(SessionOptions o = options()) : session(balancer, o, 1) {
    session.start(t0, out);
    session.on_connect(0, t0 + milliseconds(3), out);
    out.clear();
  }
};

TEST(ProxyTcpSession, StartReadsTheClientAndConnectsToThePickedServer) {
  Balancer b({srv("a"), srv("b")}, BalancerOptions{});
  TcpSession s(b, options(), 1);
  SessionActions out;
  s.start(t0, out);
  EXPECT_EQ(kinds(out), "Recv(client) Connect(0)");
  EXPECT_EQ(b.active(0), 1u);
  EXPECT_EQ(s.phase(), TcpSession::Phase::Connecting);
  EXPECT_EQ(s.deadline(), t0 + milliseconds(1000));
  out.clear();
  s.on_connect(0, t0 + milliseconds(7), out);
  EXPECT_EQ(kinds(out), "Connected(0) Recv(server)");
  EXPECT_EQ(s.summary().connect_time, milliseconds(7));
}

TEST(ProxyTcpSession, RelaysOneChunkAtATimeEachWay) {
  Relaying r;
  r.session.on_recv(Side::Client, 5, r.buffers.make("hello"), t0 + milliseconds(10), r.out);
  ASSERT_EQ(kinds(r.out), "Send(server)");
  EXPECT_EQ(bytes_of(r.out[0]), "hello");
  r.out.clear();
  // Backpressure: the client is not read again until its chunk is through.
  r.session.on_send(Side::Server, 5, t0 + milliseconds(11), r.out);
  EXPECT_EQ(kinds(r.out), "Release Recv(client)");
  EXPECT_EQ(r.out[0].buffer.id, 1u);
  r.out.clear();
  r.session.on_recv(Side::Server, 3, r.buffers.make("abc"), t0 + milliseconds(12), r.out);
  ASSERT_EQ(kinds(r.out), "Send(client)");
  EXPECT_EQ(bytes_of(r.out[0]), "abc");
  r.out.clear();
  r.session.on_send(Side::Client, 3, t0 + milliseconds(13), r.out);
  EXPECT_EQ(kinds(r.out), "Release Recv(server)");
  EXPECT_EQ(r.session.summary().bytes_from_client, 5u);
  EXPECT_EQ(r.session.summary().bytes_to_client, 3u);
}

TEST(ProxyTcpSession, ShortSendsResendTheRest) {
  Relaying r;
  r.session.on_recv(Side::Client, 10, r.buffers.make("0123456789"), t0, r.out);
  r.out.clear();
  r.session.on_send(Side::Server, 4, t0, r.out);
  ASSERT_EQ(kinds(r.out), "Send(server)");
  EXPECT_EQ(bytes_of(r.out[0]), "456789");
  r.out.clear();
  r.session.on_send(Side::Server, 6, t0, r.out);
  EXPECT_EQ(kinds(r.out), "Release Recv(client)");
}

TEST(ProxyTcpSession, ClientBytesWaitForTheConnect) {
  Balancer b({srv("a")}, BalancerOptions{});
  TcpSession s(b, options(), 1);
  Buffers buffers;
  SessionActions out;
  s.start(t0, out);
  out.clear();
  s.on_recv(Side::Client, 3, buffers.make("GET"), t0 + milliseconds(1), out);
  EXPECT_EQ(kinds(out), "");
  s.on_connect(0, t0 + milliseconds(2), out);
  ASSERT_EQ(kinds(out), "Connected(0) Send(server) Recv(server)");
  EXPECT_EQ(bytes_of(out[1]), "GET");
}

TEST(ProxyTcpSession, HalfCloseFromTheClientKeepsTheReplyFlowing) {
  Relaying r;
  r.session.on_recv(Side::Client, 0, {}, t0, r.out);
  EXPECT_EQ(kinds(r.out), "Shut(server)");
  r.out.clear();
  r.session.on_recv(Side::Server, 2, r.buffers.make("ok"), t0, r.out);
  EXPECT_EQ(kinds(r.out), "Send(client)");
  r.out.clear();
  r.session.on_send(Side::Client, 2, t0, r.out);
  EXPECT_EQ(kinds(r.out), "Release Recv(server)");
  r.out.clear();
  r.session.on_recv(Side::Server, 0, {}, t0 + milliseconds(50), r.out);
  EXPECT_EQ(kinds(r.out), "Shut(client) Finish");
  EXPECT_EQ(end_code(r.session), "--");
  EXPECT_EQ(r.session.summary().total_time, milliseconds(50));
  EXPECT_EQ(r.balancer.active(0), 0u);
}

TEST(ProxyTcpSession, EndOfStreamWaitsBehindPendingBytes) {
  Relaying r;
  r.session.on_recv(Side::Server, 4, r.buffers.make("data"), t0, r.out);
  r.out.clear();
  // The server's FIN cannot arrive while its chunk is pending (it is not read), so the
  // order seen is: chunk through, then read again, then end of stream.
  r.session.on_send(Side::Client, 4, t0, r.out);
  EXPECT_EQ(kinds(r.out), "Release Recv(server)");
  r.out.clear();
  r.session.on_recv(Side::Server, 0, {}, t0, r.out);
  EXPECT_EQ(kinds(r.out), "Shut(client)");
  r.out.clear();
  // The client goes on talking to a server that stopped talking back.
  r.session.on_recv(Side::Client, 1, r.buffers.make("x"), t0, r.out);
  EXPECT_EQ(kinds(r.out), "Send(server)");
}

TEST(ProxyTcpSession, ClientEndOfStreamBeforeTheConnectIsPassedOnAfterIt) {
  Balancer b({srv("a")}, BalancerOptions{});
  TcpSession s(b, options(), 1);
  Buffers buffers;
  SessionActions out;
  s.start(t0, out);
  s.on_recv(Side::Client, 4, buffers.make("ping"), t0, out);
  out.clear();
  s.on_connect(0, t0, out);
  EXPECT_EQ(kinds(out), "Connected(0) Send(server) Recv(server)");
  out.clear();
  s.on_send(Side::Server, 4, t0, out);
  EXPECT_EQ(kinds(out), "Release Recv(client)");
  out.clear();
  s.on_recv(Side::Client, 0, {}, t0, out);
  EXPECT_EQ(kinds(out), "Shut(server)");

  TcpSession early(b, options(), 2);
  out.clear();
  early.start(t0, out);
  early.on_recv(Side::Client, 0, {}, t0, out);
  out.clear();
  early.on_connect(0, t0, out);
  EXPECT_EQ(kinds(out), "Connected(0) Shut(server) Recv(server)");
}

TEST(ProxyTcpSession, RefusedConnectIsRetriedOnAnotherServer) {
  Balancer b({srv("a"), srv("b")}, BalancerOptions{});
  TcpSession s(b, options(), 1);
  SessionActions out;
  s.start(t0, out);
  out.clear();
  s.on_connect(-ECONNREFUSED, t0 + milliseconds(1), out);
  EXPECT_EQ(kinds(out), "Report(connect_refused) DropServer Connect(1)");
  EXPECT_EQ(out[0].server, 0u);
  EXPECT_EQ(out[0].error, ECONNREFUSED);
  EXPECT_EQ(b.active(0), 0u);
  EXPECT_EQ(b.active(1), 1u);
  out.clear();
  s.on_connect(0, t0 + milliseconds(2), out);
  EXPECT_EQ(kinds(out), "Connected(1) Recv(server)");
  EXPECT_EQ(s.summary().failed_connects, 1u);
}

TEST(ProxyTcpSession, GivesUpAfterRetriesGoingRoundTheServersAgain) {
  Balancer b({srv("a"), srv("b")}, BalancerOptions{});
  TcpSession s(b, options(3), 1);
  SessionActions out;
  s.start(t0, out);
  std::vector<ServerIndex> tried{out[1].server};
  for (int attempt = 1; attempt <= 3; ++attempt) {
    out.clear();
    s.on_connect(-ECONNREFUSED, t0, out);
    ASSERT_EQ(out.size(), 3u) << kinds(out);
    ASSERT_EQ(out[2].kind, Kind::Connect) << kinds(out);
    tried.push_back(out[2].server);
  }
  // Both servers once, then round again.
  EXPECT_NE(tried[0], tried[1]);
  std::sort(tried.begin(), tried.end());
  EXPECT_EQ(tried, (std::vector<ServerIndex>{0, 0, 1, 1}));
  out.clear();
  s.on_connect(-ECONNREFUSED, t0, out);
  EXPECT_EQ(kinds(out), "Report(connect_refused) DropServer Finish");
  EXPECT_EQ(end_code(s), "SC");
  EXPECT_EQ(s.summary().failed_connects, 4u);
  EXPECT_FALSE(s.summary().error.has_value()) << "each attempt is counted by its report";
  EXPECT_EQ(b.active(0) + b.active(1), 0u);
}

TEST(ProxyTcpSession, ASingleServerIsRetriedEvenWithRedispatch) {
  Balancer b({srv("only")}, BalancerOptions{});
  TcpSession s(b, options(1), 1);
  SessionActions out;
  s.start(t0, out);
  out.clear();
  s.on_connect(-ECONNREFUSED, t0, out);
  EXPECT_EQ(kinds(out), "Report(connect_refused) DropServer Connect(0)");
  out.clear();
  s.on_connect(-ECONNREFUSED, t0, out);
  EXPECT_EQ(kinds(out), "Report(connect_refused) DropServer Finish");
}

TEST(ProxyTcpSession, WithoutRedispatchRetriesTheSameServerUpToRetries) {
  Balancer b({srv("a"), srv("b")}, BalancerOptions{});
  TcpSession s(b, options(2, false), 1);
  SessionActions out;
  s.start(t0, out);
  out.clear();
  s.on_connect(-ECONNREFUSED, t0, out);
  EXPECT_EQ(kinds(out), "Report(connect_refused) DropServer Connect(0)");
  out.clear();
  s.on_connect(-ECONNREFUSED, t0, out);
  EXPECT_EQ(kinds(out), "Report(connect_refused) DropServer Connect(0)");
  out.clear();
  s.on_connect(-ECONNREFUSED, t0, out);
  EXPECT_EQ(kinds(out), "Report(connect_refused) DropServer Finish");
  EXPECT_EQ(s.summary().failed_connects, 3u);
}

TEST(ProxyTcpSession, ConnectTimeOutCancelsThenRetriesElsewhere) {
  Balancer b({srv("a"), srv("b")}, BalancerOptions{});
  TcpSession s(b, options(), 1);
  SessionActions out;
  s.start(t0, out);
  out.clear();
  s.on_timer(t0 + milliseconds(999), out);
  EXPECT_EQ(kinds(out), "");
  s.on_timer(t0 + milliseconds(1000), out);
  EXPECT_EQ(kinds(out), "CancelConnect");
  EXPECT_FALSE(s.deadline().has_value()) << "waiting for the cancelled connect to come back";
  out.clear();
  s.on_connect(-ECANCELED, t0 + milliseconds(1001), out);
  EXPECT_EQ(kinds(out), "Report(connect_timeout) DropServer Connect(1)");
  EXPECT_EQ(s.deadline(), t0 + milliseconds(2001));
}

TEST(ProxyTcpSession, ConnectTimeOutOnTheLastTryEndsWithServerTimeout) {
  Balancer b({srv("a")}, BalancerOptions{});
  TcpSession s(b, options(0), 1);
  SessionActions out;
  s.start(t0, out);
  s.on_timer(t0 + milliseconds(1000), out);
  out.clear();
  // Even a connect that made it just as the cancel went out counts as timed out.
  s.on_connect(0, t0 + milliseconds(1000), out);
  EXPECT_EQ(kinds(out), "Report(connect_timeout) DropServer Finish");
  EXPECT_EQ(end_code(s), "sC");
}

TEST(ProxyTcpSession, ClientAndServerTimeOutsFollowEachSidesActivity) {
  // Connected at t0+3ms; client time-out 30 s, server 40 s. Bytes that move count for the
  // side they came from and, once sent, for the side they went to.
  Relaying stuck_server;
  EXPECT_EQ(stuck_server.session.deadline(), t0 + milliseconds(30000));
  // The client talks at 20 s, but the server never takes the bytes.
  stuck_server.session.on_recv(Side::Client, 1, stuck_server.buffers.make("x"), t0 + milliseconds(20000),
                               stuck_server.out);
  stuck_server.out.clear();
  EXPECT_EQ(stuck_server.session.deadline(), t0 + milliseconds(40003)) << "server side quiet since the connect";
  stuck_server.session.on_timer(t0 + milliseconds(40002), stuck_server.out);
  EXPECT_EQ(kinds(stuck_server.out), "");
  stuck_server.session.on_timer(t0 + milliseconds(40003), stuck_server.out);
  EXPECT_EQ(kinds(stuck_server.out), "Finish");
  EXPECT_EQ(end_code(stuck_server.session), "sD");
  EXPECT_EQ(stuck_server.session.summary().error, ErrorKind::ServerTimeout);

  // The server talks at 20 s, but the client never reads.
  Relaying stuck_client;
  stuck_client.session.on_recv(Side::Server, 1, stuck_client.buffers.make("y"), t0 + milliseconds(20000),
                               stuck_client.out);
  stuck_client.out.clear();
  EXPECT_EQ(stuck_client.session.deadline(), t0 + milliseconds(30000));
  stuck_client.session.on_timer(t0 + milliseconds(30000), stuck_client.out);
  EXPECT_EQ(end_code(stuck_client.session), "cD");
  EXPECT_EQ(stuck_client.session.summary().error, ErrorKind::ClientTimeout);

  // Traffic both ways keeps both sides alive.
  Relaying busy;
  busy.session.on_recv(Side::Client, 1, busy.buffers.make("z"), t0 + milliseconds(25000), busy.out);
  busy.session.on_send(Side::Server, 1, t0 + milliseconds(25000), busy.out);
  EXPECT_EQ(busy.session.deadline(), t0 + milliseconds(55000));
}

TEST(ProxyTcpSession, IdleTimeOutTakesOverFromClientAndServer) {
  SessionOptions o = options();
  o.timeouts.idle = milliseconds(500);
  Relaying r(o);
  EXPECT_EQ(r.session.deadline(), t0 + milliseconds(503));
  r.session.on_recv(Side::Server, 1, r.buffers.make("x"), t0 + milliseconds(400), r.out);
  EXPECT_EQ(r.session.deadline(), t0 + milliseconds(900));
  r.out.clear();
  r.session.on_timer(t0 + milliseconds(900), r.out);
  EXPECT_EQ(kinds(r.out), "Finish");
  EXPECT_EQ(end_code(r.session), "cD") << "the client was the quieter side";
  EXPECT_EQ(r.session.summary().error, ErrorKind::IdleTimeout);
}

TEST(ProxyTcpSession, ZeroTimeOutsNeverFire) {
  SessionOptions o = options();
  o.timeouts.client = o.timeouts.server = milliseconds(0);
  Relaying r(o);
  EXPECT_FALSE(r.session.deadline().has_value());
  r.session.on_timer(t0 + std::chrono::hours(24 * 365), r.out);
  EXPECT_EQ(kinds(r.out), "");
}

TEST(ProxyTcpSession, ProxyHeaderGoesFirstAndClientBytesWaitForIt) {
  Balancer b({srv("a")}, BalancerOptions{});
  TcpSession s(b, options(), 1);
  Buffers buffers;
  SessionActions out;
  s.start(t0, out);
  const std::string header = "PROXY TCP4 127.0.0.1 127.0.0.2 1000 80\r\n";
  s.set_proxy_header(std::span(reinterpret_cast<const uint8_t*>(header.data()), header.size()));
  s.on_recv(Side::Client, 4, buffers.make("body"), t0, out);
  out.clear();
  s.on_connect(0, t0, out);
  ASSERT_EQ(kinds(out), "Connected(0) Send(server) Recv(server)");
  EXPECT_EQ(bytes_of(out[1]), header);
  out.clear();
  s.on_send(Side::Server, 10, t0, out);
  ASSERT_EQ(kinds(out), "Send(server)");
  EXPECT_EQ(bytes_of(out[0]), header.substr(10));
  out.clear();
  s.on_send(Side::Server, static_cast<int32_t>(header.size() - 10), t0, out);
  ASSERT_EQ(kinds(out), "Send(server)");
  EXPECT_EQ(bytes_of(out[0]), "body");
  out.clear();
  s.on_send(Side::Server, 4, t0, out);
  EXPECT_EQ(kinds(out), "Release Recv(client)");
}

TEST(ProxyTcpSession, ClientResetEndsTheSessionAndFreesTheSlot) {
  Relaying r;
  r.session.on_recv(Side::Client, -ECONNRESET, {}, t0 + milliseconds(5), r.out);
  EXPECT_EQ(kinds(r.out), "Finish");
  EXPECT_EQ(end_code(r.session), "CD");
  EXPECT_EQ(r.session.summary().error, ErrorKind::ClientReset);
  EXPECT_EQ(r.balancer.active(0), 0u);
}

TEST(ProxyTcpSession, ServerResetIsReportedAsAPassiveEvent) {
  Relaying r;
  r.session.on_recv(Side::Server, 5, r.buffers.make("12345"), t0, r.out);
  r.out.clear();
  r.session.on_send(Side::Client, 5, t0, r.out);
  r.out.clear();
  r.session.on_recv(Side::Server, -ECONNRESET, {}, t0, r.out);
  EXPECT_EQ(kinds(r.out), "Report(reset) Finish");
  EXPECT_EQ(r.out[0].server, 0u);
  EXPECT_EQ(end_code(r.session), "SD");
  EXPECT_EQ(r.session.summary().error, ErrorKind::ServerReset);
}

TEST(ProxyTcpSession, SendErrorTowardsTheClientIsAClientAbort) {
  Relaying r;
  r.session.on_recv(Side::Server, 5, r.buffers.make("12345"), t0, r.out);
  r.out.clear();
  r.session.on_send(Side::Client, -EPIPE, t0, r.out);
  EXPECT_EQ(kinds(r.out), "Finish");
  EXPECT_EQ(end_code(r.session), "CD");
  // The chunk in flight stays with the session until the worker takes it back.
  std::vector<uint32_t> released;
  r.session.take_buffers([&](IoBuffer b) { released.push_back(b.id); });
  EXPECT_EQ(released, std::vector<uint32_t>{1});
}

TEST(ProxyTcpSession, LateCompletionsAfterTheEndOnlyGiveBuffersBack) {
  Relaying r;
  r.session.kill(t0, r.out);
  EXPECT_EQ(end_code(r.session), "KD");
  r.out.clear();
  r.session.on_recv(Side::Server, 7, r.buffers.make("too late"), t0, r.out);
  EXPECT_EQ(kinds(r.out), "Release");
  r.out.clear();
  r.session.on_send(Side::Client, -ECANCELED, t0, r.out);
  r.session.on_timer(t0 + std::chrono::hours(1), r.out);
  r.session.kill(t0, r.out);
  EXPECT_EQ(kinds(r.out), "");
}

TEST(ProxyTcpSession, NoUsableServerEndsAtOnce) {
  Balancer b({srv("a", 0, ServerState::Maint)}, BalancerOptions{});
  TcpSession s(b, options(), 1);
  SessionActions out;
  s.start(t0, out);
  EXPECT_EQ(kinds(out), "Recv(client) Finish");
  EXPECT_EQ(end_code(s), "SC");
  EXPECT_EQ(s.summary().error, ErrorKind::NoServer);
}

TEST(ProxyTcpSession, QueuedUntilASlotFreesThenHandedOff) {
  BalancerOptions bo;
  bo.queue_timeout = milliseconds(2000);
  Balancer b({srv("a", 1)}, bo);
  TcpSession first(b, options(), 1);
  TcpSession second(b, options(), 2);
  SessionActions out;
  first.start(t0, out);
  first.on_connect(0, t0, out);
  out.clear();
  second.start(t0 + milliseconds(10), out);
  EXPECT_EQ(kinds(out), "Recv(client)");
  EXPECT_EQ(second.phase(), TcpSession::Phase::Queued);
  EXPECT_EQ(second.deadline(), t0 + milliseconds(2010));
  EXPECT_EQ(b.queued(), 1u);
  out.clear();
  first.on_recv(Side::Client, -ECONNRESET, {}, t0 + milliseconds(110), out);
  ASSERT_EQ(kinds(out), "Handoff(2) Finish");
  Handoff h = out[0].handoff;
  out.clear();
  second.on_dispatch(h.server, t0 + milliseconds(110), out);
  EXPECT_EQ(kinds(out), "Connect(0)");
  EXPECT_EQ(second.summary().queue_time, milliseconds(100));
  EXPECT_EQ(b.active(0), 1u);
}

TEST(ProxyTcpSession, QueueTimeOutLeavesTheQueue) {
  BalancerOptions bo;
  bo.queue_timeout = milliseconds(2000);
  Balancer b({srv("a", 1)}, bo);
  TcpSession first(b, options(), 1);
  TcpSession second(b, options(), 2);
  SessionActions out;
  first.start(t0, out);
  second.start(t0, out);
  out.clear();
  second.on_timer(t0 + milliseconds(2000), out);
  EXPECT_EQ(kinds(out), "Finish");
  EXPECT_EQ(end_code(second), "sQ");
  EXPECT_EQ(second.summary().error, ErrorKind::QueueTimeout);
  EXPECT_EQ(b.queued(), 0u);
}

TEST(ProxyTcpSession, FullQueueEndsAtOnce) {
  BalancerOptions bo;
  bo.queue_timeout = milliseconds(0);  // no queueing at all
  Balancer b({srv("a", 1)}, bo);
  TcpSession first(b, options(), 1);
  TcpSession second(b, options(), 2);
  SessionActions out;
  first.start(t0, out);
  out.clear();
  second.start(t0, out);
  EXPECT_EQ(kinds(out), "Recv(client) Finish");
  EXPECT_EQ(end_code(second), "SQ");
  EXPECT_EQ(second.summary().error, ErrorKind::QueueFull);
}

TEST(ProxyTcpSession, ClientGoingAwayWhileQueuedLeavesTheQueue) {
  BalancerOptions bo;
  Balancer b({srv("a", 1)}, bo);
  TcpSession first(b, options(), 1);
  TcpSession second(b, options(), 2);
  SessionActions out;
  first.start(t0, out);
  second.start(t0, out);
  out.clear();
  second.on_recv(Side::Client, -ECONNRESET, {}, t0, out);
  EXPECT_EQ(end_code(second), "CQ");
  EXPECT_EQ(b.queued(), 0u);
}

}  // namespace
}  // namespace hafront::proxy
