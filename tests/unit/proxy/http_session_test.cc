// The http-mode state machine, driven with fake completions and simulated time: no sockets.
// A Driver plays the worker: it records what the session sends each way, completes sends
// at once (or leaves them pending when a test wants to), and checks that each side never
// has more than one receive outstanding.
#include "proxy/http_session.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <deque>
#include <string>
#include <vector>

#include "control/status.h"
#include "proxy/access_log.h"
#include "proxy/routing.h"
#include "proxy/server_pool.h"

namespace hafront::proxy {
namespace {

using Kind = HttpAction::Kind;
using std::chrono::milliseconds;

const SteadyTime t0{std::chrono::seconds(1000)};

ServerSpec srv(std::string name, ServerState state = ServerState::Up) {
  ServerSpec s;
  s.name = std::move(name);
  s.state = state;
  return s;
}

// Routes by the pure match_route(); backend 0 is the listening service's own pool.
struct FakeRouter : HttpRouter {
  std::vector<HttpBackend> backends;
  std::vector<RouteRule> rules;
  bool front_serves = true;
  const HttpBackend* route(std::string_view host, std::string_view path) noexcept override {
    if (auto i = match_route(rules, host, path)) return &backends[rules[*i].target];
    return front_serves ? &backends[0] : nullptr;
  }
};

HttpBackendOptions backend_options(uint32_t retries = 2) {
  HttpBackendOptions o;
  o.connect = milliseconds(1000);
  o.queue = milliseconds(2000);
  o.server = milliseconds(5000);
  o.retries = retries;
  return o;
}

std::string kind_name(const HttpAction& x) {
  switch (x.kind) {
    case Kind::Recv: return std::string("Recv(") + to_string(x.side) + ")";
    case Kind::Send: return std::string("Send(") + to_string(x.side) + ")";
    case Kind::Release: return "Release";
    case Kind::ShutdownWrite: return std::string("Shut(") + to_string(x.side) + ")";
    case Kind::Connect:
      return "Connect(" + std::to_string(x.backend) + "/" + std::to_string(x.server) + (x.reuse ? ",reuse" : "") + ")";
    case Kind::CancelConnect: return "CancelConnect";
    case Kind::DropServer: return "DropServer";
    case Kind::ParkServer: return "ParkServer";
    case Kind::Report: return std::string("Report(") + to_string(x.event) + ")";
    case Kind::Connected: return "Connected";
    case Kind::Handoff: return "Handoff";
    case Kind::RequestDone: return "RequestDone";
    case Kind::Finish: return "Finish";
  }
  return "?";
}

struct Driver {
  Balancer pool{{srv("a"), srv("b")}, BalancerOptions{}};
  Balancer other{{srv("x")}, BalancerOptions{}};
  FakeRouter router;
  HttpFrontOptions front;
  HttpClient client;
  std::unique_ptr<HttpSession> s;
  SteadyTime now = t0;
  bool auto_ack = true;  // complete every send in full at once

  std::deque<std::string> storage;  // fake receive buffers (stable addresses)
  uint32_t next_id = 1;
  std::string to_client, to_server;  // everything sent each way
  std::vector<HttpAction> actions;   // everything the session asked for, in order
  std::vector<HttpAction> unacked;   // sends left pending (auto_ack off)
  std::vector<HttpRequestSummary> done;
  int client_recvs = 0, server_recvs = 0;  // outstanding
  bool finished = false;
  uint32_t releases = 0;

  Driver() {
    front.http_request = milliseconds(3000);
    front.keep_alive = milliseconds(10000);
    front.client = milliseconds(20000);
    router.backends.push_back({&pool, backend_options(), 0});
    router.backends.push_back({&other, backend_options(), 1});
    client.set_address("10.0.0.1");
    client.local_port = 8080;
    s = std::make_unique<HttpSession>(router, front, client, 7);
    step([&](HttpActions& out) { s->start(now, out); });
  }

  template <typename F>
  void step(F&& f) {
    HttpActions out;
    f(out);
    absorb(out);
  }

  // Ended requests are resolved as actions are queued: their summaries live in the step's
  // HttpActions.
  struct Queued {
    HttpAction action;
    HttpRequestSummary summary;
  };
  static void enqueue(std::deque<Queued>& q, const HttpActions& from) {
    for (const HttpAction& a : from) q.push_back({a, a.kind == Kind::RequestDone ? from.done(a.len) : HttpRequestSummary{}});
  }

  void absorb(const HttpActions& first) {
    std::deque<Queued> pending;
    enqueue(pending, first);
    while (!pending.empty()) {
      HttpAction a = pending.front().action;
      HttpRequestSummary summary = pending.front().summary;
      pending.pop_front();
      actions.push_back(a);
      switch (a.kind) {
        case Kind::Recv:
          (a.side == Side::Client ? client_recvs : server_recvs)++;
          EXPECT_LE(client_recvs, 1) << "two receives outstanding on the client";
          EXPECT_LE(server_recvs, 1) << "two receives outstanding on the server";
          break;
        case Kind::Send: {
          (a.side == Side::Client ? to_client : to_server).append(reinterpret_cast<const char*>(a.data), a.len);
          if (auto_ack) {
            HttpActions more;
            s->on_send(a.side, static_cast<int32_t>(a.len), now, more);
            enqueue(pending, more);
          } else {
            unacked.push_back(a);
          }
          break;
        }
        case Kind::RequestDone:
          done.push_back(summary);
          break;
        case Kind::Release:
          ++releases;
          break;
        case Kind::DropServer:
        case Kind::ParkServer:
          server_recvs = 0;  // the worker keeps stale completions from the session
          break;
        case Kind::Finish:
          finished = true;
          break;
        default:
          break;
      }
    }
  }

  size_t mark() const { return actions.size(); }
  std::string kinds_since(size_t m) const {
    std::string out;
    for (size_t i = m; i < actions.size(); ++i) out += (out.empty() ? "" : " ") + kind_name(actions[i]);
    return out;
  }
  bool saw_since(size_t m, Kind k) const {
    for (size_t i = m; i < actions.size(); ++i) {
      if (actions[i].kind == k) return true;
    }
    return false;
  }
  const HttpAction* last(Kind k) const {
    for (size_t i = actions.size(); i-- > 0;) {
      if (actions[i].kind == k) return &actions[i];
    }
    return nullptr;
  }

  IoBuffer buffer(const std::string& bytes) {
    storage.push_back(bytes);
    storage.back().reserve(bytes.size() + 64);
    return IoBuffer{reinterpret_cast<uint8_t*>(storage.back().data()), next_id++};
  }
  void client_sends(const std::string& bytes) {
    ASSERT_EQ(client_recvs, 1) << "the session is not reading the client";
    --client_recvs;
    IoBuffer b = buffer(bytes);
    step([&](HttpActions& out) { s->on_recv(Side::Client, static_cast<int32_t>(bytes.size()), b, now, out); });
  }
  void server_sends(const std::string& bytes) {
    ASSERT_EQ(server_recvs, 1) << "the session is not reading the server";
    --server_recvs;
    IoBuffer b = buffer(bytes);
    step([&](HttpActions& out) { s->on_recv(Side::Server, static_cast<int32_t>(bytes.size()), b, now, out); });
  }
  void client_closes(int32_t result = 0) {
    ASSERT_EQ(client_recvs, 1);
    --client_recvs;
    step([&](HttpActions& out) { s->on_recv(Side::Client, result, {}, now, out); });
  }
  void server_closes(int32_t result = 0) {
    ASSERT_EQ(server_recvs, 1);
    --server_recvs;
    step([&](HttpActions& out) { s->on_recv(Side::Server, result, {}, now, out); });
  }
  void connected(bool reused = false, bool armed = false) {
    if (armed) ++server_recvs;
    step([&](HttpActions& out) { s->on_connect(0, reused, armed, now, out); });
  }
  void connect_fails(int32_t error) {
    step([&](HttpActions& out) { s->on_connect(error, false, false, now, out); });
  }
  void ack(size_t i, int32_t result) {
    HttpAction a = unacked.at(i);
    unacked.erase(unacked.begin() + static_cast<std::ptrdiff_t>(i));
    step([&](HttpActions& out) { s->on_send(a.side, result, now, out); });
  }
  void advance(milliseconds d) {
    now += d;
    step([&](HttpActions& out) { s->on_timer(now, out); });
  }
  // The request head the server got last (from the last request line to the empty line).
  std::string last_request_head() const {
    size_t end = to_server.rfind("\r\n\r\n");
    size_t start = to_server.rfind(" HTTP/1.", end);
    start = to_server.rfind("\r\n", start);
    start = start == std::string::npos ? 0 : start + 2;
    return to_server.substr(start, end + 4 - start);
  }
};

const std::string kGet = "GET /x HTTP/1.1\r\nHost: example.com\r\n\r\n";
const std::string kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok";

// A driver with one GET answered and its connection parked.
struct AfterOneGet : Driver {
  AfterOneGet() {
    client_sends(kGet);
    connected();
    server_sends(kOk);
  }
};

// ---- the basic exchange ---------------------------------------------------------------------

TEST(ProxyHttpSession, ForwardsAGetAndRelaysTheResponseThenParksTheServerConnection) {
  Driver d;
  EXPECT_EQ(d.kinds_since(0), "Recv(client)");
  size_t m = d.mark();
  d.client_sends(kGet);
  EXPECT_EQ(d.kinds_since(m), "Release Recv(client) Connect(0/0,reuse)") << "read on; an idle pooled one may serve a GET";
  EXPECT_EQ(d.pool.active(0), 1u);
  m = d.mark();
  d.connected();
  EXPECT_EQ(d.kinds_since(m), "Connected Send(server) Recv(server)");
  EXPECT_EQ(d.to_server,
            "GET /x HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: http\r\n"
            "X-Forwarded-Port: 8080\r\n\r\n");
  m = d.mark();
  d.server_sends(kOk);
  EXPECT_EQ(d.to_client, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") << "hop-by-hop Connection dropped";
  EXPECT_EQ(d.kinds_since(m), "Send(client) Release ParkServer RequestDone");
  EXPECT_EQ(d.pool.active(0), 0u) << "the balancer counts requests in flight";
  ASSERT_EQ(d.done.size(), 1u);
  const HttpRequestSummary& r = d.done[0];
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.request_line(), "GET /x HTTP/1.1");
  EXPECT_EQ(r.bytes_to_client, d.to_client.size());
  EXPECT_EQ(r.bytes_from_client, kGet.size());
  EXPECT_EQ(r.server, 0u);
  EXPECT_EQ(code(r.cause), '-');
  EXPECT_FALSE(d.finished);
  EXPECT_EQ(d.s->phase(), HttpSession::Phase::WaitRequest);
  EXPECT_TRUE(d.s->between_requests());
}

TEST(ProxyHttpSession, TheRewrittenResponseHeadGoesOutWithItsBodyFromTheReceiveBuffer) {
  Driver d;
  d.client_sends(kGet);
  d.connected();
  d.server_sends(kOk);
  const HttpAction* send = d.last(Kind::Send);
  ASSERT_NE(send, nullptr);
  const std::string& received = d.storage.back();
  const auto* begin = reinterpret_cast<const uint8_t*>(received.data());
  EXPECT_GE(send->data, begin) << "the head was rewritten in place, no copy of the body";
  EXPECT_EQ(send->data + send->len, begin + received.size());
}

TEST(ProxyHttpSession, KeepAliveReusesAPooledConnectionForTheNextRequest) {
  AfterOneGet d;
  size_t m = d.mark();
  d.client_sends(kGet);
  EXPECT_EQ(d.kinds_since(m), "Release Recv(client) Connect(0/1,reuse)") << "round robin: the next server";
  m = d.mark();
  d.connected(/*reused=*/true, /*armed=*/true);
  EXPECT_EQ(d.kinds_since(m), "Send(server)") << "the pool's receive is the session's now: no second one";
  d.server_sends(kOk);
  ASSERT_EQ(d.done.size(), 2u);
  EXPECT_TRUE(d.done[1].reused);
  EXPECT_FALSE(d.done[1].connect_time) << "no connect on a reused connection";
  EXPECT_EQ(d.s->requests(), 2u);
}

TEST(ProxyHttpSession, TheFirstPostOfAConnectionNeverTakesAPooledConnection) {
  Driver d;
  d.client_sends("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
  const HttpAction* c = d.last(Kind::Connect);
  ASSERT_NE(c, nullptr);
  EXPECT_FALSE(c->reuse) << "a failure on a reused connection could not be retried (http-reuse safe)";
  d.connected();
  d.server_sends(kOk);
  d.client_sends("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
  EXPECT_TRUE(d.last(Kind::Connect)->reuse) << "a later one may: the client can retry it itself";
}

TEST(ProxyHttpSession, ClosesAfterTheResponseWhenTheClientAskedTo) {
  Driver d;
  d.client_sends("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(d.last_request_head().find("Connection"), std::string::npos) << "the server connection stays reusable";
  d.connected();
  size_t m = d.mark();
  d.server_sends(kOk);
  EXPECT_EQ(d.to_client, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
  EXPECT_EQ(d.kinds_since(m), "Send(client) Release ParkServer RequestDone Finish");
}

TEST(ProxyHttpSession, Http10KeepAliveIsKeptAndSaidBothWays) {
  Driver d;
  d.client_sends("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  d.connected();
  EXPECT_NE(d.to_server.find("GET / HTTP/1.0\r\n"), std::string::npos);
  EXPECT_NE(d.last_request_head().find("Connection: keep-alive\r\n"), std::string::npos);
  d.server_sends(kOk);
  EXPECT_EQ(d.to_client, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok");
  EXPECT_FALSE(d.finished);
}

TEST(ProxyHttpSession, Http10WithoutKeepAliveCloses) {
  Driver d;
  d.client_sends("GET / HTTP/1.0\r\n\r\n");
  d.connected();
  d.server_sends(kOk);
  EXPECT_NE(d.to_client.find("Connection: close\r\n"), std::string::npos);
  EXPECT_TRUE(d.finished);
}

TEST(ProxyHttpSession, AHeadSpanningReceivesIsGatheredAndParsedWhole) {
  Driver d;
  d.client_sends("GET /long HTTP/1.1\r\nHo");
  EXPECT_FALSE(d.last(Kind::Connect));
  d.client_sends("st: h\r\nX-A: 1\r\n");
  d.client_sends("\r\n");
  ASSERT_TRUE(d.last(Kind::Connect));
  d.connected();
  EXPECT_NE(d.to_server.find("GET /long HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n"), std::string::npos);
  // A response head in pieces too, its body starting in the last piece.
  d.server_sends("HTTP/1.1 200 OK\r\nContent-Le");
  EXPECT_EQ(d.to_client, "");
  d.server_sends("ngth: 5\r\n\r\nhel");
  d.server_sends("lo");
  EXPECT_EQ(d.to_client, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
  ASSERT_EQ(d.done.size(), 1u);
}

// ---- pipelining ------------------------------------------------------------------------------

TEST(ProxyHttpSession, PipelinedRequestsAreHandledOneAtATimeInOrder) {
  Driver d;
  d.client_sends("GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\nGET /3 HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(d.client_recvs, 0) << "the buffer still holds requests: the client is not read";
  d.connected();
  EXPECT_EQ(d.to_server.find("GET /2"), std::string::npos) << "the second waits for the first's response";
  d.server_sends("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1");
  ASSERT_TRUE(d.last(Kind::Connect));
  EXPECT_EQ(d.done.size(), 1u);
  d.connected(true, true);
  EXPECT_NE(d.to_server.find("GET /2"), std::string::npos);
  d.server_sends("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2");
  d.connected(true, true);
  d.server_sends("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n3");
  ASSERT_EQ(d.done.size(), 3u);
  EXPECT_EQ(d.done[0].request_line(), "GET /1 HTTP/1.1");
  EXPECT_EQ(d.done[2].request_line(), "GET /3 HTTP/1.1");
  EXPECT_EQ(d.to_client, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2"
                         "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n3");
  EXPECT_EQ(d.client_recvs, 1) << "all consumed: reading again";
}

// ---- bodies ----------------------------------------------------------------------------------

TEST(ProxyHttpSession, AContentLengthRequestBodyGoesUpWithItsHeadAndThenAsItComes) {
  Driver d;
  d.client_sends("POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123");
  d.connected();
  EXPECT_EQ(d.to_server.substr(d.to_server.size() - 4), "0123") << "head and first body bytes in one send";
  EXPECT_EQ(std::count_if(d.actions.begin(), d.actions.end(),
                          [](const HttpAction& a) { return a.kind == Kind::Send && a.side == Side::Server; }),
            1);
  d.client_sends("456789GET /next HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(d.to_server.substr(d.to_server.size() - 6), "456789") << "only the body, not the next request";
  d.server_sends(kOk);
  ASSERT_EQ(d.done.size(), 1u);
  EXPECT_EQ(d.done[0].bytes_from_client, 50u + 10u) << "head and body";
  ASSERT_TRUE(d.last(Kind::Connect));
  d.connected(true, true);
  EXPECT_NE(d.to_server.find("GET /next HTTP/1.1"), std::string::npos);
}

TEST(ProxyHttpSession, AnAnswerBeforeTheWholeBodyStillLetsTheBodyGoUpAndKeepsTheConnections) {
  Driver d;
  d.client_sends("POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123");
  d.connected();
  d.server_sends(kOk);  // nginx answers `return 200` at once and discards the body it reads later
  EXPECT_EQ(d.to_client, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") << "no Connection: close";
  EXPECT_TRUE(d.done.empty()) << "the request is not over while its body goes up";
  EXPECT_EQ(d.s->deadline(), d.now + milliseconds(20000)) << "the client's time-out while its body is awaited";
  d.client_sends("456789");
  EXPECT_EQ(d.to_server.substr(d.to_server.size() - 6), "456789");
  ASSERT_EQ(d.done.size(), 1u);
  EXPECT_TRUE(d.last(Kind::ParkServer));
  EXPECT_FALSE(d.finished);
}

TEST(ProxyHttpSession, AChunkedRequestBodyIsPassedOnAsReceivedAfterValidation) {
  Driver d;
  d.client_sends("POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
  d.connected();
  EXPECT_NE(d.last_request_head().find("Transfer-Encoding: chunked\r\n"), std::string::npos);
  d.client_sends("lo\r\n3;ext=1\r\nabc\r\n0\r\nTrailer-A: x\r\n\r\n");
  EXPECT_NE(d.to_server.find("5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nTrailer-A: x\r\n\r\n"), std::string::npos)
      << "chunks, extensions and trailers as they came";
  d.server_sends(kOk);
  EXPECT_EQ(d.done.size(), 1u);
  EXPECT_FALSE(d.finished);
}

TEST(ProxyHttpSession, ABadChunkInARequestBodyIsA400AndTheServerConnectionGoes) {
  Driver d;
  d.client_sends("POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
  d.connected();
  size_t m = d.mark();
  d.client_sends("zz\r\n");
  EXPECT_TRUE(d.saw_since(m, Kind::DropServer));
  EXPECT_EQ(d.to_client.substr(0, 24), "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(d.done.back().error, ErrorKind::BadRequest);
}

TEST(ProxyHttpSession, AChunkedResponseIsRelayedAsReceivedAndKeepsTheConnections) {
  AfterOneGet d;
  d.to_client.clear();
  d.client_sends(kGet);
  d.connected(true, true);
  d.server_sends("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n");
  d.server_sends("5\r\npedia\r\n0\r\n\r\n");
  EXPECT_EQ(d.to_client, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n5\r\npedia\r\n0\r\n\r\n");
  ASSERT_EQ(d.done.size(), 2u);
  EXPECT_EQ(d.last(Kind::ParkServer) != nullptr, true);
  EXPECT_FALSE(d.finished);
}

TEST(ProxyHttpSession, AResponseReadUntilCloseEndsTheClientConnectionToo) {
  Driver d;
  d.client_sends(kGet);
  d.connected();
  d.server_sends("HTTP/1.1 200 OK\r\n\r\nsome");
  d.server_sends(" more");
  size_t m = d.mark();
  d.server_closes();
  EXPECT_EQ(d.to_client, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nsome more");
  EXPECT_EQ(d.kinds_since(m), "DropServer RequestDone Finish");
  EXPECT_EQ(d.done[0].status, 200);
  EXPECT_EQ(code(d.done[0].cause), '-');
}

TEST(ProxyHttpSession, BackpressureOneBufferPerDirection) {
  Driver d;
  d.auto_ack = false;
  d.client_sends(kGet);
  d.connected();
  d.ack(0, static_cast<int32_t>(d.to_server.size()));
  d.server_sends("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nabcd");
  EXPECT_EQ(d.server_recvs, 0) << "the server is not read while its bytes wait for the client";
  ASSERT_EQ(d.unacked.size(), 1u);
  d.ack(0, 10);  // a short send: the rest goes again
  ASSERT_EQ(d.unacked.size(), 1u);
  EXPECT_EQ(d.server_recvs, 0);
  d.ack(0, static_cast<int32_t>(d.unacked[0].len));
  EXPECT_EQ(d.server_recvs, 1);
  d.server_sends("efgh");
  d.ack(0, 4);
  EXPECT_EQ(d.done.size(), 1u);
}

// ---- bodiless responses and interim ones ---------------------------------------------------

TEST(ProxyHttpSession, HeadAnswersKeepTheirContentLengthAndHaveNoBody) {
  Driver d;
  d.client_sends("HEAD /h HTTP/1.1\r\nHost: h\r\n\r\n");
  d.connected();
  d.server_sends("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n");
  EXPECT_EQ(d.to_client, "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n");
  ASSERT_EQ(d.done.size(), 1u);
  EXPECT_TRUE(d.last(Kind::ParkServer));
}

TEST(ProxyHttpSession, NoContentAndNotModifiedHaveNoBody) {
  for (std::string head : {"HTTP/1.1 204 No Content\r\n\r\n", "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"}) {
    Driver d;
    d.client_sends(kGet);
    d.connected();
    d.server_sends(head);
    EXPECT_EQ(d.to_client, head);
    EXPECT_EQ(d.done.size(), 1u) << head;
    EXPECT_FALSE(d.finished);
  }
}

TEST(ProxyHttpSession, InterimResponsesAreRelayedBeforeTheFinalOne) {
  Driver d;
  d.client_sends(kGet);
  d.connected();
  d.server_sends("HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  EXPECT_EQ(d.to_client,
            "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  ASSERT_EQ(d.done.size(), 1u);
  EXPECT_EQ(d.done[0].status, 200);
}

TEST(ProxyHttpSession, Http10ClientsNeverGetInterimResponses) {
  Driver d;
  d.client_sends("GET / HTTP/1.0\r\n\r\n");
  d.connected();
  d.server_sends("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  EXPECT_EQ(d.to_client, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
}

// ---- Expect: 100-continue --------------------------------------------------------------------

TEST(ProxyHttpSession, ContinueFromTheServerIsRelayedAndTheBodyFollows) {
  Driver d;
  d.client_sends("PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
  d.connected();
  EXPECT_NE(d.last_request_head().find("Expect: 100-continue\r\n"), std::string::npos) << "forwarded";
  d.server_sends("HTTP/1.1 100 Continue\r\n\r\n");
  EXPECT_EQ(d.to_client, "HTTP/1.1 100 Continue\r\n\r\n");
  d.client_sends("data");
  EXPECT_EQ(d.to_server.substr(d.to_server.size() - 4), "data");
  d.server_sends("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
  ASSERT_EQ(d.done.size(), 1u);
  EXPECT_EQ(d.done[0].status, 201);
  EXPECT_TRUE(d.last(Kind::ParkServer));
  EXPECT_FALSE(d.finished);
}

TEST(ProxyHttpSession, AFinalAnswerWithoutContinueDoesNotWaitForTheBody) {
  Driver d;
  d.client_sends("PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
  d.connected();
  size_t m = d.mark();
  d.server_sends("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(d.to_client, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
      << "the body may never come: this connection carries no other request";
  EXPECT_EQ(d.kinds_since(m), "Send(client) Release DropServer RequestDone Finish");
  EXPECT_EQ(d.done[0].status, 401);
}

// ---- Upgrade ---------------------------------------------------------------------------------

TEST(ProxyHttpSession, SwitchingProtocolsTurnsTheConnectionIntoATunnel) {
  Driver d;
  d.client_sends("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
  d.connected();
  std::string head = d.last_request_head();
  EXPECT_NE(head.find("Upgrade: websocket\r\n"), std::string::npos) << "kept when upgrading";
  EXPECT_NE(head.find("Connection: upgrade\r\n"), std::string::npos);
  d.server_sends("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhi");
  EXPECT_EQ(d.to_client, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nhi");
  EXPECT_EQ(d.s->phase(), HttpSession::Phase::Tunnel);
  d.client_sends("ping");
  EXPECT_EQ(d.to_server.substr(d.to_server.size() - 4), "ping");
  d.server_sends("pong");
  EXPECT_EQ(d.to_client.substr(d.to_client.size() - 4), "pong");
  size_t m = d.mark();
  d.client_closes();
  EXPECT_EQ(d.kinds_since(m), "Shut(server)");
  d.server_closes();
  EXPECT_TRUE(d.finished);
  ASSERT_EQ(d.done.size(), 1u);
  EXPECT_EQ(d.done[0].status, 101);
  EXPECT_FALSE(d.last(Kind::ParkServer)) << "a tunnel's connection is never reused";
}

TEST(ProxyHttpSession, SwitchingProtocolsNobodyAskedForIsABadGateway) {
  Driver d;
  d.client_sends(kGet);
  d.connected();
  d.server_sends("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n");
  EXPECT_EQ(d.to_client.substr(0, 24), "HTTP/1.1 502 Bad Gateway");
  EXPECT_EQ(d.done[0].error, ErrorKind::BadResponse);
}

// ---- hop-by-hop fields and X-Forwarded-* -----------------------------------------------------

TEST(ProxyHttpSession, HopByHopFieldsGoAndXForwardedForIsAppendedTo) {
  Driver d;
  d.client_sends(
      "GET /h HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: timeout=5\r\n"
      "Proxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: h2c\r\nX-Secret: 1\r\n"
      "X-Forwarded-For: 192.0.2.1\r\nx-forwarded-proto: https\r\nX-Forwarded-Port: 1\r\nAccept: */*\r\n\r\n");
  d.connected();
  EXPECT_EQ(d.last_request_head(),
            "GET /h HTTP/1.1\r\nHost: h\r\nAccept: */*\r\nX-Forwarded-For: 192.0.2.1, 10.0.0.1\r\n"
            "X-Forwarded-Proto: http\r\nX-Forwarded-Port: 8080\r\n\r\n");
}

TEST(ProxyHttpSession, WithoutForwardForTheClientsFieldsPassUntouched) {
  Driver d;
  d.router.backends[0].options.forward_for = false;
  d.client_sends("GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 192.0.2.1\r\n\r\n");
  d.connected();
  EXPECT_EQ(d.last_request_head(), "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 192.0.2.1\r\n\r\n");
}

TEST(ProxyHttpSession, ResponseHopByHopFieldsGo) {
  Driver d;
  d.client_sends(kGet);
  d.connected();
  d.server_sends("HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Internal\r\nKeep-Alive: timeout=60\r\nX-Internal: 1\r\n"
                 "Set-Cookie: a=b\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(d.to_client, "HTTP/1.1 200 OK\r\nSet-Cookie: a=b\r\nContent-Length: 0\r\n\r\n");
}

// ---- routing ---------------------------------------------------------------------------------

TEST(ProxyHttpSession, RoutesByHostAndPathPrefixFirstMatchWins) {
  Driver d;
  d.router.rules = {{"glance.example.com", "/image", 1}, {"", "/v2", 1}};
  d.client_sends("GET /images/1 HTTP/1.1\r\nHost: Glance.Example.com:9292\r\n\r\n");
  EXPECT_EQ(d.last(Kind::Connect)->backend, 1u) << "host ignoring case and port, plain path prefix";
  d.connected();
  d.server_sends(kOk);
  EXPECT_EQ(d.done[0].backend, 1u);
  d.client_sends("GET /image HTTP/1.1\r\nHost: other\r\n\r\n");
  EXPECT_EQ(d.last(Kind::Connect)->backend, 0u) << "no match: the listening service's own servers";
}

TEST(ProxyHttpRouting, MatchRouteComparesHostWithoutPortAndPathAsAPrefix) {
  std::vector<RouteRule> rules = {{"a.example", "", 1}, {"", "/api", 2}, {"b.example", "/x", 3}, {"[::1]", "", 4}};
  EXPECT_EQ(match_route(rules, "A.Example:80", "/anything"), 0u);
  EXPECT_EQ(match_route(rules, "c", "/api/v1"), 1u);
  EXPECT_EQ(match_route(rules, "c", "/apis"), 1u) << "a plain prefix, as HAProxy's path_beg";
  EXPECT_EQ(match_route(rules, "b.example", "/x/1"), 2u);
  EXPECT_EQ(match_route(rules, "b.example", "/y"), std::nullopt);
  EXPECT_EQ(match_route(rules, "[::1]:8080", "/"), 3u);
  EXPECT_EQ(match_route(rules, "", "/"), std::nullopt);
  EXPECT_EQ(host_of("h:1"), "h");
  EXPECT_EQ(host_of("[2001:db8::1]:443"), "[2001:db8::1]");
}

TEST(ProxyHttpSession, NoServersAndNoRouteIs503) {
  Driver d;
  d.router.front_serves = false;
  d.client_sends(kGet);
  EXPECT_EQ(d.to_client.substr(0, 32), "HTTP/1.1 503 Service Unavailable");
  EXPECT_EQ(d.done[0].error, ErrorKind::NoServer);
}

// ---- errors ----------------------------------------------------------------------------------

TEST(ProxyHttpSession, AMalformedRequestIs400AndTheConnectionClosesAfterReadingWhatIsLeft) {
  Driver d;
  size_t m = d.mark();
  d.client_sends("GET / HTTP/1.1\r\nHost: h\r\nBad Field: x\r\n\r\n");
  EXPECT_EQ(d.kinds_since(m), "RequestDone Release Send(client) Recv(client) Shut(client)");
  const std::string& out = d.to_client;
  EXPECT_EQ(out.substr(0, 24), "HTTP/1.1 400 Bad Request");
  EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos);
  size_t cl = out.find("Content-Length: ");
  ASSERT_NE(cl, std::string::npos);
  EXPECT_EQ(std::stoul(out.substr(cl + 16)), out.size() - out.find("\r\n\r\n") - 4) << "a correct Content-Length";
  EXPECT_EQ(d.done[0].request_line(), "<BADREQ>");
  EXPECT_EQ(d.done[0].status, 400);
  EXPECT_EQ(std::string({code(d.done[0].cause), code(d.done[0].phase)}), "PR");
  EXPECT_FALSE(d.last(Kind::Connect)) << "nothing reaches a server";
  d.client_sends("more junk");
  EXPECT_FALSE(d.finished) << "read and thrown away";
  d.client_closes();
  EXPECT_TRUE(d.finished);
}

TEST(ProxyHttpSession, ParserStatusesAreAnswered) {
  struct Case {
    std::string request;
    std::string status;
  };
  for (const Case& c : std::vector<Case>{{"GET / HTTP/2.0\r\n\r\n", "505"},
                                         {"GET / HTTP/1.1\r\nHost: h\r\nExpect: x\r\n\r\n", "417"},
                                         {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "501"},
                                         {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "400"}}) {
    Driver d;
    d.client_sends(c.request);
    EXPECT_EQ(d.to_client.substr(9, 3), c.status) << c.request;
  }
  Driver big;
  big.front.limits.max_header_section = 64;
  big.s->reset(big.router, big.front, big.client, 7);
  big.client_recvs = 0;
  big.step([&](HttpActions& out) { big.s->start(big.now, out); });
  big.client_sends("GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(100, 'a') + "\r\n\r\n");
  EXPECT_EQ(big.to_client.substr(9, 3), "431");
  Driver longuri;
  longuri.front.limits.max_start_line = 32;
  longuri.s->reset(longuri.router, longuri.front, longuri.client, 7);
  longuri.client_recvs = 0;
  longuri.step([&](HttpActions& out) { longuri.s->start(longuri.now, out); });
  longuri.client_sends("GET /" + std::string(100, 'a'));
  EXPECT_EQ(longuri.to_client.substr(9, 3), "414");
}

TEST(ProxyHttpSession, HalfAHeadGets408AfterHttpRequestTimeout) {
  Driver d;
  d.client_sends("GET / HTTP/1.1\r\nHo");
  EXPECT_EQ(d.s->deadline(), t0 + milliseconds(3000));
  d.advance(milliseconds(2999));
  EXPECT_EQ(d.to_client, "");
  d.advance(milliseconds(1));
  EXPECT_EQ(d.to_client.substr(0, 29), "HTTP/1.1 408 Request Time-out");
  EXPECT_EQ(d.done[0].error, ErrorKind::RequestTimeout);
  EXPECT_EQ(std::string({code(d.done[0].cause), code(d.done[0].phase)}), "cR");
  d.advance(HttpSession::kLingerTime);
  EXPECT_TRUE(d.finished) << "the client is read for a while, then closed";
}

TEST(ProxyHttpSession, AnIdleKeepAliveConnectionClosesSilently) {
  AfterOneGet d;
  d.to_client.clear();
  EXPECT_EQ(d.s->deadline(), d.now + milliseconds(10000)) << "http_keep_alive between requests";
  d.advance(milliseconds(10000));
  EXPECT_EQ(d.to_client, "");
  EXPECT_TRUE(d.finished);
  EXPECT_EQ(d.done.size(), 1u) << "no request, no log line";
}

TEST(ProxyHttpSession, AServerThatClosesBeforeAnsweringAPostIs502) {
  Driver d;
  d.client_sends("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx");
  d.connected();
  size_t m = d.mark();
  d.server_closes(-ECONNRESET);
  EXPECT_EQ(d.kinds_since(m).substr(0, 50), "Report(reset) DropServer RequestDone Send(client) ");
  EXPECT_EQ(d.to_client.substr(0, 24), "HTTP/1.1 502 Bad Gateway");
  EXPECT_EQ(d.done[0].error, ErrorKind::ServerReset);
  EXPECT_EQ(std::string({code(d.done[0].cause), code(d.done[0].phase)}), "SH");
}

TEST(ProxyHttpSession, AGetWhoseNewConnectionClosesEmptyGoesToAnotherServerOnce) {
  Driver d;
  d.client_sends(kGet);
  d.connected();
  size_t m = d.mark();
  d.server_closes(0);
  EXPECT_EQ(d.kinds_since(m), "Report(reset) DropServer Connect(0/1)") << "the failing server is reported; the other one";
  d.connected();
  d.server_closes(0);
  EXPECT_EQ(d.to_client.substr(0, 24), "HTTP/1.1 502 Bad Gateway") << "once only";
  EXPECT_TRUE(d.done[0].retried);
}

TEST(ProxyHttpSession, AnInvalidResponseHeadIs502) {
  Driver d;
  d.client_sends(kGet);
  d.connected();
  d.server_sends("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
  EXPECT_EQ(d.to_client.substr(0, 24), "HTTP/1.1 502 Bad Gateway");
  EXPECT_EQ(d.done[0].error, ErrorKind::BadResponse);
}

TEST(ProxyHttpSession, AServerSilentPastTimeoutsServerIs504) {
  Driver d;
  d.client_sends(kGet);
  d.connected();
  EXPECT_EQ(d.s->deadline(), t0 + milliseconds(5000));
  d.advance(milliseconds(5000));
  EXPECT_EQ(d.to_client.substr(0, 29), "HTTP/1.1 504 Gateway Time-out");
  EXPECT_EQ(d.done[0].error, ErrorKind::ServerTimeout);
  EXPECT_EQ(std::string({code(d.done[0].cause), code(d.done[0].phase)}), "sH");
}

TEST(ProxyHttpSession, NoErrorAnswerOnceResponseBytesWentOut) {
  Driver d;
  d.client_sends(kGet);
  d.connected();
  d.server_sends("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
  std::string before = d.to_client;
  size_t m = d.mark();
  d.server_closes(-ECONNRESET);
  EXPECT_EQ(d.to_client, before) << "no 502 after a 200 started: the client sees the connection cut";
  EXPECT_TRUE(d.saw_since(m, Kind::Finish));
  EXPECT_EQ(d.done[0].error, ErrorKind::ServerReset);
  EXPECT_EQ(std::string({code(d.done[0].cause), code(d.done[0].phase)}), "SD");
  // The same for a time-out in the middle of the body.
  Driver t;
  t.client_sends(kGet);
  t.connected();
  t.server_sends("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
  before = t.to_client;
  t.advance(milliseconds(5000));
  EXPECT_EQ(t.to_client, before);
  EXPECT_TRUE(t.finished);
}

TEST(ProxyHttpSession, EveryServerDownIs503) {
  Driver d;
  d.pool.set_state(0, ServerState::Down);
  d.pool.set_state(1, ServerState::Down);
  d.client_sends(kGet);
  EXPECT_EQ(d.to_client.substr(0, 32), "HTTP/1.1 503 Service Unavailable");
}

TEST(ProxyHttpSession, RefusedConnectsAreRetriedOnTheOtherServerThen503) {
  Driver d;
  d.client_sends(kGet);
  size_t m = d.mark();
  d.connect_fails(-ECONNREFUSED);
  EXPECT_EQ(d.kinds_since(m), "Report(connect_refused) DropServer Connect(0/1,reuse)");
  d.connect_fails(-ECONNREFUSED);
  d.connect_fails(-ECONNREFUSED);  // retries: 2, so three attempts
  EXPECT_EQ(d.to_client.substr(0, 32), "HTTP/1.1 503 Service Unavailable");
  EXPECT_EQ(d.done[0].failed_connects, 3u);
  EXPECT_EQ(std::string({code(d.done[0].cause), code(d.done[0].phase)}), "SC");
}

TEST(ProxyHttpSession, AConnectTimeOutIsCancelledAndRetried) {
  Driver d;
  d.client_sends(kGet);
  size_t m = d.mark();
  d.advance(milliseconds(1000));
  EXPECT_EQ(d.kinds_since(m), "CancelConnect");
  m = d.mark();
  d.connect_fails(-ECANCELED);
  EXPECT_EQ(d.kinds_since(m), "Report(connect_timeout) DropServer Connect(0/1,reuse)");
}

TEST(ProxyHttpSession, AQueuedRequestWaitsForASlotOr503sAtQueueTimeout) {
  Driver d;
  d.pool.set_maxconn(0, 1);
  d.pool.set_maxconn(1, 1);
  d.pool.on_connect_start(0);
  d.pool.on_connect_start(1);
  d.client_sends(kGet);
  EXPECT_EQ(d.s->phase(), HttpSession::Phase::Queued);
  EXPECT_EQ(d.s->queued_on(), &d.pool);
  d.advance(milliseconds(2000));
  EXPECT_EQ(d.to_client.substr(0, 32), "HTTP/1.1 503 Service Unavailable");
  EXPECT_EQ(d.done[0].error, ErrorKind::QueueTimeout);
}

// ---- retries on reused connections -----------------------------------------------------------

TEST(ProxyHttpSession, AnIdempotentRequestIsSentAgainWhenItsReusedConnectionFails) {
  AfterOneGet d;
  d.to_client.clear();
  d.client_sends(kGet);
  d.connected(true, true);
  size_t m = d.mark();
  d.server_closes(0);  // the server had closed the idle connection as it was taken
  EXPECT_EQ(d.kinds_since(m), "DropServer Connect(0/0)") << "a new connection, not another pooled one";
  EXPECT_EQ(d.to_client, "") << "invisible to the client";
  d.connected();
  d.server_sends(kOk);
  EXPECT_EQ(d.to_client, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  EXPECT_TRUE(d.done[1].retried);
  // Only once: a second failure answers 502.
  d.client_sends(kGet);
  d.connected(true, true);
  d.server_closes(0);
  d.connected();
  d.server_closes(0);
  EXPECT_NE(d.to_client.find("HTTP/1.1 502 Bad Gateway"), std::string::npos);
}

TEST(ProxyHttpSession, APostIsNeverSentTwice) {
  AfterOneGet d;
  d.to_client.clear();
  d.client_sends("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi");
  ASSERT_TRUE(d.last(Kind::Connect)->reuse);
  d.connected(true, true);
  size_t m = d.mark();
  d.server_closes(0);
  EXPECT_FALSE(d.saw_since(m, Kind::Connect));
  EXPECT_EQ(d.to_client.substr(0, 24), "HTTP/1.1 502 Bad Gateway");
}

TEST(ProxyHttpSession, AResponseToAnotherRequestNeverComesFromAStaleServerByte) {
  AfterOneGet d;
  // The pooled connection's receive brings bytes nobody asked for: the session that takes
  // it treats them as the answer only once its request went out; here they are a bad head.
  d.client_sends(kGet);
  d.connected(true, true);
  d.server_sends("garbage\r\n\r\n");
  EXPECT_NE(d.to_client.find("HTTP/1.1 502 Bad Gateway"), std::string::npos);
}

// ---- the client going away -------------------------------------------------------------------

TEST(ProxyHttpSession, AClientThatHalfClosesAfterItsRequestStillGetsTheAnswer) {
  Driver d;
  d.client_sends(kGet);
  d.client_closes();
  EXPECT_FALSE(d.finished);
  d.connected();
  d.server_sends(kOk);
  EXPECT_NE(d.to_client.find("Connection: close"), std::string::npos);
  EXPECT_TRUE(d.finished);
  EXPECT_EQ(d.done[0].status, 200);
}

TEST(ProxyHttpSession, AClientResetDuringTheResponseEndsEverything) {
  Driver d;
  d.client_sends(kGet);
  d.connected();
  size_t m = d.mark();
  d.client_closes(-ECONNRESET);
  EXPECT_EQ(d.kinds_since(m), "DropServer RequestDone Finish");
  EXPECT_EQ(d.done[0].error, ErrorKind::ClientReset);
}

TEST(ProxyHttpSession, KillEndsARequestUnderWay) {
  Driver d;
  d.client_sends(kGet);
  d.connected();
  d.step([&](HttpActions& out) { d.s->kill(d.now, out); });
  EXPECT_TRUE(d.finished);
  EXPECT_EQ(code(d.done[0].cause), 'K');
}

TEST(ProxyHttpSession, ResetKeepsTheBuffersForTheNextConnection) {
  AfterOneGet d;
  d.step([&](HttpActions& out) { d.s->kill(d.now, out); });
  d.s->take_buffers([](IoBuffer) {});
  d.s->reset(d.router, d.front, d.client, 8);
  d.client_recvs = 0;
  d.finished = false;
  d.step([&](HttpActions& out) { d.s->start(d.now, out); });
  d.client_sends(kGet);
  EXPECT_EQ(d.s->requests(), 1u);
  EXPECT_TRUE(d.last(Kind::Connect));
}

TEST(ProxyHttpSession, AProxyHeaderGoesFirstOnANewConnection) {
  Driver d;
  d.client_sends(kGet);
  const std::string header = "PROXY TCP4 10.0.0.1 10.0.0.2 1234 8080\r\n";
  d.s->set_proxy_header(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(header.data()), header.size()));
  d.connected();
  EXPECT_EQ(d.to_server.substr(0, header.size()), header);
  EXPECT_EQ(d.to_server.substr(header.size(), 15), "GET /x HTTP/1.1");
}

// ---- the pool and the log line ---------------------------------------------------------------

TEST(ProxyServerPool, TakesTheNewestBoundsEachServerAndPurgesIdleOnes) {
  ServerPoolLimits limits;
  limits.per_server = 2;
  limits.per_worker = 3;
  limits.max_idle = milliseconds(1000);
  ServerPool pool(limits);
  ServerKey a{1, {}};
  ServerKey b{2, {}};
  EXPECT_EQ(pool.put(a, 10, t0), std::nullopt);
  EXPECT_EQ(pool.put(a, 11, t0 + milliseconds(1)), std::nullopt);
  EXPECT_EQ(pool.put(a, 12, t0 + milliseconds(2)), 10u) << "past the server's bound the oldest goes";
  EXPECT_EQ(pool.put(b, 20, t0 + milliseconds(3)), std::nullopt);
  EXPECT_EQ(pool.put(b, 21, t0 + milliseconds(4)), 21u) << "past the worker's bound the new one is refused";
  EXPECT_EQ(pool.size(), 3u);
  EXPECT_EQ(pool.take(a), 12u) << "newest first";
  EXPECT_TRUE(pool.remove(a, 11));
  EXPECT_FALSE(pool.remove(a, 11));
  EXPECT_EQ(pool.take(a), std::nullopt);
  std::vector<uint32_t> closed;
  pool.purge(t0 + milliseconds(1003), [&](uint32_t h) { closed.push_back(h); });
  EXPECT_EQ(closed, std::vector<uint32_t>{20});
  EXPECT_EQ(pool.size(), 0u);
}

TEST(ProxyAccessLog, HttpLinesFollowHaproxysHttpLogOrder) {
  HttpAccessLogEntry e;
  e.client.address.bytes = {127, 0, 0, 1};
  e.client.port = 40312;
  e.started_unix_ms = 1741342867311;  // 2025-03-07 10:21:07.311 UTC
  e.frontend = "web";
  e.backend = "glance";
  e.server = "ctrl-0";
  e.request_ms = 0;
  e.queue_ms = -1;
  e.connect_ms = 1;
  e.response_ms = 3;
  e.active_ms = 5;
  e.status = 200;
  e.bytes_to_client = 1234;
  e.request_line = "GET /image\"s HTTP/1.1";
  std::array<char, kAccessLineMax> line;
  size_t n = format_http_access_line(e, line);
  EXPECT_EQ(std::string(line.data(), n),
            "127.0.0.1:40312 [07/Mar/2025:10:21:07.311] web glance/ctrl-0 0/-1/1/3/5 200 1234 - - ---- 0 "
            "\"GET /image?s HTTP/1.1\"\n");
  std::string long_target(1000, 'a');
  e.request_line = long_target;
  n = format_http_access_line(e, line);
  EXPECT_EQ(n, kAccessLineMax);
  EXPECT_EQ(std::string(line.data() + n - 2, 2), "\"\n") << "cut inside the quotes";
}

// The http counters as `hafrontctl status` shows them (src/control/status.cc).
TEST(ProxyHttpStatus, RequestsResponseClassesAndResponseTimesAreShown) {
  control::Status st;
  control::ServiceStatus svc;
  svc.name = "web";
  svc.mode = "http";
  svc.balance = "roundrobin";
  svc.state = "running";
  control::ServiceTraffic t;
  t.connections = 3;
  t.http = control::HttpCounts{};
  t.http->requests = 12;
  t.http->responses = {0, 10, 0, 1, 1};
  svc.traffic = t;
  control::ServerStatus srv;
  srv.name = "a";
  srv.address = "127.0.0.1:80";
  srv.state = "up";
  control::ServerTraffic sv;
  sv.connections = 1;
  sv.http = control::HttpCounts{};
  sv.http->requests = 12;
  sv.http->responses = {0, 10, 0, 1, 1};
  sv.http->response_time_us = {{250, 11}, {0, 1}};
  sv.http->response_p50_us = 250;
  sv.http->response_p99_us = UINT64_MAX;
  srv.traffic = sv;
  svc.servers.push_back(srv);
  st.services.push_back(svc);
  boost::json::value v = control::to_json(st);
  const auto& c = v.at("services").at(0).at("counters");
  EXPECT_EQ(c.at("requests").as_uint64(), 12u);
  EXPECT_EQ(c.at("responses").at("2xx").as_uint64(), 10u);
  EXPECT_EQ(c.at("responses").at("5xx").as_uint64(), 1u);
  EXPECT_FALSE(c.as_object().contains("response_time_us")) << "per server only";
  const auto& sc = v.at("services").at(0).at("servers").at(0).at("counters");
  EXPECT_EQ(sc.at("response_time_us").at("p50").as_uint64(), 250u);
  EXPECT_TRUE(sc.at("response_time_us").at("le").at(1).is_null());
  std::string text = control::render_text(v);
  EXPECT_NE(text.find("12 requests (2xx 10, 4xx 1, 5xx 1)"), std::string::npos) << text;
  EXPECT_NE(text.find("response p50 <= 250us, p99 <= more than the last bucket"), std::string::npos) << text;
}

}  // namespace
}  // namespace hafront::proxy
