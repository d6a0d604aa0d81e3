// Alerts: folding, group_wait, de-duplication, resolved alerts, events, rate limits, and the
// manager with a fake sink on driven time.
#include "health/alerts.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <fstream>
#include <sstream>

#include "health/alerts_sink.h"
#include "temp_dir.h"

namespace hafront::health {
namespace {

using std::chrono::milliseconds;
using Names = std::vector<std::string>;

ServiceFacts facts(std::string name, ServiceState state, std::vector<std::string> deps = {}, std::string reason = "") {
  ServiceFacts f;
  f.name = std::move(name);
  f.state = state;
  f.depends_on = std::move(deps);
  f.reason = std::move(reason);
  return f;
}

// galera down (root), keystone and nova down because of it.
Problems galera_outage() {
  std::vector<ServiceFacts> f = {facts("keystone", ServiceState::Down, {"galera"}, "no usable server: k"),
                                 facts("nova", ServiceState::Down, {"keystone"}, "no usable server: n"),
                                 facts("galera", ServiceState::Down, {}, "no eligible writer: ctrl-0 connect refused")};
  ServiceView galera;
  galera.name = "galera";
  ServerView s;
  s.server = "ctrl-0";
  s.state = ServerState::Down;
  s.reason = "connect refused";
  s.evidence.wsrep_local_state = 2;
  galera.servers.push_back(s);
  std::vector<ServiceView> views = {galera};
  return problems_from(find_root_causes(f), views);
}

TEST(Problems, DependentsAreFoldedIntoTheRoot) {
  Problems p = galera_outage();
  ASSERT_EQ(p.problems.size(), 1u);
  const Problem& g = p.problems[0];
  EXPECT_EQ(g.id, "galera");
  EXPECT_EQ(g.severity, AlertSeverity::Critical);
  EXPECT_EQ(g.summary, "galera down");
  EXPECT_EQ(g.root_cause, "galera: down — no eligible writer: ctrl-0 connect refused");
  EXPECT_EQ(g.affected, (Names{"keystone", "nova"}));
  ASSERT_EQ(g.evidence.size(), 1u);
  EXPECT_EQ(g.evidence[0].server, "ctrl-0");
  EXPECT_EQ(g.evidence[0].evidence.wsrep_local_state, 2);
  EXPECT_EQ(p.folded.at("keystone"), "galera");
  EXPECT_EQ(p.folded.at("nova"), "galera");
}

TEST(Problems, DegradedIsAWarningOfItsOwn) {
  std::vector<ServiceFacts> f = {facts("keystone", ServiceState::Degraded, {}, "b down (HTTP 503)"),
                                 facts("glance", ServiceState::Up)};
  Problems p = problems_from(find_root_causes(f), {});
  ASSERT_EQ(p.problems.size(), 1u);
  EXPECT_EQ(p.problems[0].severity, AlertSeverity::Warning);
  EXPECT_EQ(p.problems[0].summary, "keystone degraded");
}

TEST(AlertEngine, OneFoldedAlertAfterGroupWait) {
  AlertEngine e(milliseconds(3000));
  // keystone fails first, on its own...
  Problems first = problems_from(
      find_root_causes(std::vector<ServiceFacts>{facts("keystone", ServiceState::Down, {"galera"}, "k"),
                                                 facts("galera", ServiceState::Up)}),
      {});
  e.update(first, 1000);
  EXPECT_TRUE(e.take_due(1000).empty()) << "nothing before group_wait";
  EXPECT_EQ(e.next_due(), 4000);
  // ...and a check later galera is found down: keystone folds into it, unsent.
  e.update(galera_outage(), 2000);
  EXPECT_TRUE(e.take_due(3999).empty());
  auto sent = e.take_due(5000);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].id, "galera");
  EXPECT_TRUE(sent[0].firing);
  EXPECT_EQ(sent[0].affected, (Names{"keystone", "nova"}));
  EXPECT_EQ(sent[0].time_ms, 5000);
  EXPECT_EQ(sent[0].since_ms, 2000);
  // De-duplicated: the same problem is not sent again.
  e.update(galera_outage(), 6000);
  EXPECT_TRUE(e.take_due(20000).empty());
  EXPECT_FALSE(e.next_due());
  ASSERT_EQ(e.active().size(), 1u);
  // Recovery: one resolved alert, at once.
  e.update({}, 21000);
  auto resolved = e.take_due(21000);
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_EQ(resolved[0].id, "galera");
  EXPECT_FALSE(resolved[0].firing);
  EXPECT_EQ(resolved[0].summary, "galera resolved");
  EXPECT_TRUE(e.active().empty());
  EXPECT_TRUE(e.take_due(99999).empty());
}

TEST(AlertEngine, AProblemGoneBeforeGroupWaitIsNeverSent) {
  AlertEngine e(milliseconds(3000));
  e.update(galera_outage(), 0);
  e.update({}, 1000);
  EXPECT_TRUE(e.take_due(10000).empty());
}

TEST(AlertEngine, FoldedAfterItWasSentIsResolvedSayingWhere) {
  AlertEngine e(milliseconds(0));
  e.update(problems_from(find_root_causes(std::vector<ServiceFacts>{
                             facts("keystone", ServiceState::Down, {"galera"}, "k"), facts("galera", ServiceState::Up)}),
                         {}),
           0);
  ASSERT_EQ(e.take_due(0).size(), 1u);
  e.update(galera_outage(), 100);
  auto out = e.take_due(100);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].id, "keystone");
  EXPECT_FALSE(out[0].firing);
  EXPECT_EQ(out[0].summary, "keystone resolved: now part of the alert for galera");
  EXPECT_EQ(out[1].id, "galera");
  EXPECT_TRUE(out[1].firing);
}

TEST(AlertEngine, ASeverityChangeIsSentAgain) {
  AlertEngine e(milliseconds(1000));
  auto degraded = problems_from(
      find_root_causes(std::vector<ServiceFacts>{facts("keystone", ServiceState::Degraded, {}, "b down")}), {});
  auto down = problems_from(
      find_root_causes(std::vector<ServiceFacts>{facts("keystone", ServiceState::Down, {}, "no usable server")}), {});
  e.update(degraded, 0);
  ASSERT_EQ(e.take_due(1000).size(), 1u);
  e.update(down, 2000);
  EXPECT_TRUE(e.take_due(2500).empty());
  auto out = e.take_due(3000);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].severity, AlertSeverity::Critical);
  // Back to the severity already sent while waiting: nothing new.
  e.update(degraded, 4000);
  e.update(down, 4100);
  EXPECT_TRUE(e.take_due(9000).empty());
}

TEST(AlertEngine, EventsGoAtOnceAndRepeatsAreHeldForAMinute) {
  AlertEngine e;
  e.event("fence device pdu-a: monitor failed", AlertSeverity::Warning, 0);
  e.event("fence device pdu-a: monitor failed", AlertSeverity::Warning, 30'000);
  auto out = e.take_due(30'000);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].id, "event");
  e.event("fence device pdu-a: monitor failed", AlertSeverity::Warning, 61'000);
  EXPECT_EQ(e.take_due(61'000).size(), 1u);
}

TEST(AlertJson, CarriesTheFields) {
  Alert a;
  a.id = "galera";
  a.severity = AlertSeverity::Critical;
  a.summary = "galera down";
  a.root_cause = "galera: down — x";
  a.affected = {"keystone"};
  AlertEvidence ev{"ctrl-0", "down", "HTTP 503", {}};
  ev.evidence.http_status = 503;
  ev.evidence.body_excerpt = "busy";
  a.evidence = {ev};
  a.time_ms = 1'700'000'000'123;
  a.since_ms = 1'700'000'000'000;
  auto j = to_json(a, "ctrl-0", "overcloud");
  EXPECT_EQ(j.at("state"), "firing");
  EXPECT_EQ(j.at("severity"), "critical");
  EXPECT_EQ(j.at("time"), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(j.at("affected").as_array().at(0), "keystone");
  EXPECT_EQ(j.at("evidence").as_array().at(0).at("http_status"), 503);
  EXPECT_EQ(j.at("evidence").as_array().at(0).at("body_excerpt"), "busy");
  EXPECT_EQ(j.at("node"), "ctrl-0");
  a.firing = false;
  EXPECT_EQ(to_json(a, "n", "c").at("state"), "resolved");
}

TEST(RateLimiter, AtMostNPerMinuteThenOneSummary) {
  RateLimiter r(3);
  EXPECT_TRUE(r.admit(0));
  EXPECT_TRUE(r.admit(10));
  EXPECT_TRUE(r.admit(20));
  EXPECT_FALSE(r.admit(30));
  EXPECT_FALSE(r.admit(40));
  EXPECT_EQ(r.suppressed(), 2u);
  EXPECT_FALSE(r.take_summary(59'999)) << "no slot until the first one is a minute old";
  EXPECT_EQ(r.summary_due(), 60'000);
  EXPECT_EQ(r.take_summary(60'000), 2u);
  EXPECT_FALSE(r.take_summary(60'001));
  EXPECT_FALSE(r.summary_due());
  // The summary took a slot: two more fit in this minute.
  EXPECT_TRUE(r.admit(60'010));
  EXPECT_TRUE(r.admit(60'020));
  EXPECT_FALSE(r.admit(60'030));
}

struct FakeSink : AlertSink {
  std::vector<std::string>* bodies;
  explicit FakeSink(std::vector<std::string>* b) : bodies(b) {}
  void send(const std::string& body) override { bodies->push_back(body); }
  SinkStatus status() const override { return {"fake", bodies->size(), 0, 0, 0, ""}; }
  void stop() override {}
};

TEST(AlertManager, RateLimitsPerSinkAndSumsUpTheRest) {
  boost::asio::io_context io;
  int64_t now = 1'000'000;
  AlertManager m(io, "node-1", "lab", AlertManager::Options{[&] { return now; }, false});
  config::AlertOptions o;
  o.max_per_minute = 2;
  o.group_wait = milliseconds(0);
  m.configure(o);
  std::vector<std::string> bodies;
  m.add_sink(std::make_unique<FakeSink>(&bodies));
  std::vector<std::string> seen;
  m.set_on_alert([&](const Alert& a) { seen.push_back(a.summary); });
  for (int i = 0; i < 5; ++i) m.event("event " + std::to_string(i));
  auto next = m.pump();
  EXPECT_EQ(seen.size(), 5u) << "every alert reaches the log";
  ASSERT_EQ(bodies.size(), 2u) << "the sink gets two a minute";
  EXPECT_NE(bodies[0].find("\"summary\":\"event 0\""), std::string::npos) << bodies[0];
  EXPECT_NE(bodies[0].find("\"node\":\"node-1\""), std::string::npos);
  ASSERT_TRUE(next);
  EXPECT_EQ(*next, now + 60'000);
  now += 60'000;
  m.pump();
  ASSERT_EQ(bodies.size(), 3u);
  EXPECT_NE(bodies[2].find("3 more alert(s) were not sent"), std::string::npos) << bodies[2];
  EXPECT_NE(bodies[2].find("\"id\":\"rate-limit\""), std::string::npos);
  ASSERT_EQ(m.sinks().size(), 1u);
  EXPECT_EQ(m.sinks()[0].rate_limited, 3u);
}

TEST(AlertManager, ProblemsWaitThenGoOnce) {
  boost::asio::io_context io;
  int64_t now = 0;
  AlertManager m(io, "n", "c", AlertManager::Options{[&] { return now; }, false});
  config::AlertOptions o;
  o.group_wait = milliseconds(2000);
  m.configure(o);
  std::vector<std::string> bodies;
  m.add_sink(std::make_unique<FakeSink>(&bodies));
  m.update(galera_outage());
  EXPECT_EQ(m.pump(), 2000);
  EXPECT_TRUE(bodies.empty());
  now = 2000;
  m.pump();
  ASSERT_EQ(bodies.size(), 1u);
  EXPECT_NE(bodies[0].find("\"affected\":[\"keystone\",\"nova\"]"), std::string::npos) << bodies[0];
  m.update(galera_outage());
  m.pump();
  EXPECT_EQ(bodies.size(), 1u);
  m.update({});
  m.pump();
  ASSERT_EQ(bodies.size(), 2u);
  EXPECT_NE(bodies[1].find("\"state\":\"resolved\""), std::string::npos);
}

// ---- the sinks, against real children and a real socket ---------------------------------

// Runs the loop until the sink has an outcome for `n` sends (or 20 s pass: a hang fails).
void settle(boost::asio::io_context& io, const AlertSink& sink, uint64_t n = 1) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (sink.status().sent + sink.status().failed < n && std::chrono::steady_clock::now() < deadline) {
    io.restart();
    io.run_one_for(std::chrono::milliseconds(100));
  }
}

TEST(ExecSink, TheAlertArrivesOnStdin) {
  test_support::TempDir dir("hafront-exec-sink-");
  boost::asio::io_context io;
  config::ExecSink cfg;
  std::string out = (dir.path / "got.json").string();
  cfg.command = {"/bin/sh", "-c", "cat > '" + out + "'"};
  auto sink = make_exec_sink(io, cfg);
  sink->send("{\"id\":\"galera\"}");
  settle(io, *sink);
  EXPECT_EQ(sink->status().sent, 1u) << sink->status().last_error;
  std::ifstream f(out);
  std::stringstream got;
  got << f.rdbuf();
  EXPECT_EQ(got.str(), "{\"id\":\"galera\"}");
}

TEST(ExecSink, KilledAtItsTimeOutWithoutBlockingTheLoop) {
  boost::asio::io_context io;
  config::ExecSink cfg;
  cfg.command = {"/bin/sleep", "30"};
  cfg.timeout = milliseconds(100);
  auto sink = make_exec_sink(io, cfg);
  auto start = std::chrono::steady_clock::now();
  sink->send("{}");
  settle(io, *sink);
  EXPECT_EQ(sink->status().failed, 1u);
  EXPECT_EQ(sink->status().last_error, "killed after its 100ms time-out");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10)) << "not the sleep's 30 s";
}

TEST(ExecSink, AFailingOrMissingProgramIsCounted) {
  boost::asio::io_context io;
  config::ExecSink cfg;
  cfg.command = {"/bin/sh", "-c", "exit 3"};
  auto sink = make_exec_sink(io, cfg);
  sink->send("{}");
  settle(io, *sink);
  EXPECT_EQ(sink->status().last_error, "exit 3");
  cfg.command = {"/nonexistent/page"};
  auto missing = make_exec_sink(io, cfg);
  missing->send("{}");
  settle(io, *missing);
  EXPECT_EQ(missing->status().failed, 1u);
  EXPECT_NE(missing->status().last_error.find("cannot start /nonexistent/page"), std::string::npos)
      << missing->status().last_error;
}

TEST(WebhookSink, PostsTheJsonAndWantsA2xx) {
  namespace http = boost::beast::http;
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acceptor(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  uint16_t port = acceptor.local_endpoint().port();
  std::vector<std::string> bodies;
  std::vector<std::string> targets;
  unsigned answer = 204;
  std::function<void()> accept_one = [&] {
    auto sock = std::make_shared<boost::asio::ip::tcp::socket>(io);
    acceptor.async_accept(*sock, [&, sock](boost::system::error_code ec) {
      if (ec) return;
      auto buf = std::make_shared<boost::beast::flat_buffer>();
      auto req = std::make_shared<http::request<http::string_body>>();
      http::async_read(*sock, *buf, *req, [&, sock, buf, req](boost::system::error_code ec2, size_t) {
        if (ec2) return;
        bodies.push_back(req->body());
        targets.push_back(std::string(req->target()) + " " + std::string((*req)[http::field::content_type]));
        auto res = std::make_shared<http::response<http::empty_body>>(static_cast<http::status>(answer), 11);
        http::async_write(*sock, *res, [sock, res](boost::system::error_code, size_t) {});
      });
      accept_one();
    });
  };
  accept_one();
  config::WebhookSink cfg;
  cfg.url = "http://127.0.0.1:" + std::to_string(port) + "/hooks/x";
  cfg.host = "127.0.0.1";
  cfg.port = port;
  cfg.target = "/hooks/x";
  auto sink = make_webhook_sink(io, cfg);
  sink->send("{\"id\":\"galera\"}");
  settle(io, *sink, 1);
  EXPECT_EQ(sink->status().sent, 1u) << sink->status().last_error;
  ASSERT_EQ(bodies.size(), 1u);
  EXPECT_EQ(bodies[0], "{\"id\":\"galera\"}");
  EXPECT_EQ(targets[0], "/hooks/x application/json");
  answer = 500;
  sink->send("{}");
  settle(io, *sink, 2);
  EXPECT_EQ(sink->status().failed, 1u);
  EXPECT_EQ(sink->status().last_error, "HTTP 500");
  // Nobody listening: a failed connect, counted, the loop never blocked.
  acceptor.close();
  sink->send("{}");
  settle(io, *sink, 3);
  EXPECT_EQ(sink->status().failed, 2u);
  EXPECT_NE(sink->status().last_error.find("connect"), std::string::npos) << sink->status().last_error;
}

}  // namespace
}  // namespace hafront::health
