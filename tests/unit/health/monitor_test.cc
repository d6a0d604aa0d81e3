// The health monitor on driven time: a fake clock, a fake probe factory whose probes
// complete only when the test says (through the Asio loop, as real ones do), and poll()
// called by the test. Nothing here waits for real time.
#include "health/monitor.h"

#include <gtest/gtest.h>

#include <set>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "config/config.h"
#include "proxy/balance.h"

namespace hafront::health {
namespace {

using std::chrono::milliseconds;

std::shared_ptr<const config::Config> load(const std::string& services, const std::string& checks = "") {
  std::string text = "cluster: {name: lab}\n";
  if (!checks.empty()) text += "checks:\n" + checks;
  text += "services:\n" + services;
  config::LoadOptions o;
  o.check_secret_files = false;
  auto r = config::load_string(text, "test.yaml", o);
  std::string errors;
  for (const auto& d : r.diagnostics) errors += d.format() + "\n";
  EXPECT_TRUE(r.ok()) << errors;
  return r.config;
}

struct Pending {
  std::string server;
  config::Check check;
  ProbeDone done;
  bool cancelled = false;
  bool completed = false;
  int64_t started_ms = 0;
};

class FakeProbe : public Probe {
 public:
  explicit FakeProbe(std::shared_ptr<Pending> p) : p_(std::move(p)) {}
  ~FakeProbe() override { p_->cancelled = p_->cancelled || !p_->completed; }
  void cancel() override { p_->cancelled = true; }

 private:
  std::shared_ptr<Pending> p_;
};

class MonitorTest : public ::testing::Test {
 protected:
  void start(std::shared_ptr<const config::Config> config) {
    HealthMonitor::Options o;
    o.now = [this] { return t0_ + offset_; };
    o.wall_ms = [this] { return 1'000'000 + offset_.count(); };
    o.timers = false;
    o.seed = 42;
    o.probe = [this](boost::asio::io_context&, const config::Check& check, const ProbeTarget& target,
                     ProbeDone done) -> std::unique_ptr<Probe> {
      auto p = std::make_shared<Pending>();
      p->server = target.server;
      p->check = check;
      p->done = std::move(done);
      p->started_ms = offset_.count();
      probes_.push_back(p);
      return std::make_unique<FakeProbe>(p);
    };
    monitor_ = std::make_unique<HealthMonitor>(io_, o);
    monitor_->set_on_change([this] { ++changes_; });
    monitor_->configure(std::move(config));
    run();
  }

  // Moves the clock to `ms` and runs what is due.
  void at(int64_t ms) {
    offset_ = milliseconds(ms);
    monitor_->poll();
    run();
  }

  void run() {
    io_.restart();
    io_.poll();
  }

  // The running probe of `server` (the newest not finished).
  std::shared_ptr<Pending> running(const std::string& server) {
    for (auto it = probes_.rbegin(); it != probes_.rend(); ++it) {
      if ((*it)->server == server && !(*it)->completed && !(*it)->cancelled) return *it;
    }
    return nullptr;
  }

  // Completes the running probe of `server`, as a real probe does: through the loop.
  void finish(const std::string& server, bool ok, std::string reason = "") {
    auto p = running(server);
    ASSERT_TRUE(p) << "no probe running for " << server;
    p->completed = true;
    Observation o;
    o.ok = ok;
    o.reason = reason.empty() ? (ok ? "TCP connect ok" : "connect refused") : reason;
    boost::asio::post(io_, [p, o] { p->done(o); });
    run();
  }

  void finish_with(const std::string& server, Observation o) {
    auto p = running(server);
    ASSERT_TRUE(p) << "no probe running for " << server;
    p->completed = true;
    boost::asio::post(io_, [p, o] { p->done(o); });
    run();
  }

  ServerView server(const std::string& service, const std::string& name) {
    for (const auto& s : monitor_->view()) {
      for (const auto& v : s.servers) {
        if (s.name == service && v.server == name) return v;
      }
    }
    ADD_FAILURE() << "no server " << service << "/" << name;
    return {};
  }

  ServiceView service(const std::string& name) {
    for (const auto& s : monitor_->view()) {
      if (s.name == name) return s;
    }
    ADD_FAILURE() << "no service " << name;
    return {};
  }

  // Starts times of the probes of `server`.
  std::vector<int64_t> starts(const std::string& name) {
    std::vector<int64_t> out;
    for (const auto& p : probes_) {
      if (p->server == name) out.push_back(p->started_ms);
    }
    return out;
  }

  boost::asio::io_context io_;
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  milliseconds offset_{0};
  std::vector<std::shared_ptr<Pending>> probes_;
  std::unique_ptr<HealthMonitor> monitor_;
  int changes_ = 0;
};

const char* kTcpCheck = "  tcp1: {tcp: {}, interval: 1s, fast_interval: 200ms, timeout: 100ms, rise: 2, fall: 3, jitter: 0%}\n";

std::string two_servers(const std::string& extra = "check: tcp1") {
  return "  web:\n    listen: [127.0.0.1:8000]\n    " + extra +
         "\n    servers: [{name: a, address: 127.0.0.1:9001}, {name: b, address: 127.0.0.1:9002}]\n";
}

TEST_F(MonitorTest, FirstCheckDecidesThenRiseAndFall) {
  start(load(two_servers(), kTcpCheck));
  EXPECT_EQ(server("web", "a").state, ServerState::Unknown);
  EXPECT_EQ(server("web", "a").reason, "not checked yet");
  at(200);  // every first check starts within the first fast_interval
  ASSERT_TRUE(running("a"));
  ASSERT_TRUE(running("b"));
  finish("a", true);
  finish("b", false);
  EXPECT_EQ(server("web", "a").state, ServerState::Up) << "one success at start";
  EXPECT_EQ(server("web", "b").state, ServerState::Down) << "one failure at start";
  EXPECT_EQ(server("web", "b").reason, "connect refused");

  // a: fall 3.
  for (int i = 1; i <= 2; ++i) {
    at(200 + 2000 * i);
    finish("a", false);
    EXPECT_EQ(server("web", "a").state, ServerState::Up) << i << " failure(s)";
    EXPECT_EQ(server("web", "a").failures, static_cast<uint32_t>(i));
  }
  EXPECT_EQ(server("web", "a").reason, "connect refused (2 of 3 failed checks before down)");
  at(6200);
  finish("a", false);
  EXPECT_EQ(server("web", "a").state, ServerState::Down);
  // b: rise 2.
  at(6200);
  finish("b", true);
  EXPECT_EQ(server("web", "b").state, ServerState::Down);
  EXPECT_EQ(server("web", "b").reason, "TCP connect ok (1 of 2 passed checks before up)");
  at(8200);
  finish("b", true);
  EXPECT_EQ(server("web", "b").state, ServerState::Up);
  EXPECT_GT(server("web", "b").since_ms, 1'000'000);
}

TEST_F(MonitorTest, FastIntervalWhileBetweenStatesAndNoJitterAtZero) {
  start(load(two_servers(), kTcpCheck));
  at(200);
  finish("a", true);  // up at 200: next at 1200
  at(1199);
  EXPECT_FALSE(running("a"));
  at(1200);
  ASSERT_TRUE(running("a"));
  finish("a", false);  // 1 of 3 failures: next after fast_interval
  at(1399);
  EXPECT_FALSE(running("a"));
  at(1400);
  ASSERT_TRUE(running("a"));
  finish("a", true);  // back to steady: interval again
  at(2399);
  EXPECT_FALSE(running("a"));
  at(2400);
  EXPECT_TRUE(running("a"));
}

TEST_F(MonitorTest, JitterStaysWithinBoundsAndSpreadsServers) {
  start(load(two_servers(),
             "  tcp1: {tcp: {}, interval: 1s, fast_interval: 200ms, timeout: 100ms, rise: 1, fall: 1, jitter: 20%}\n"));
  // Complete every probe at once; step the clock 1 ms at a time so each start is exact.
  for (int64_t ms = 0; ms <= 30'000; ++ms) {
    offset_ = milliseconds(ms);
    monitor_->poll();
    for (const char* name : {"a", "b"}) {
      if (auto p = running(name); p && p->started_ms == ms) {
        p->completed = true;
        Observation o;
        o.ok = true;
        o.reason = "ok";
        p->done(o);  // from the loop in real life; here the same turn is fine for timing
      }
    }
  }
  run();
  for (const char* name : {"a", "b"}) {
    auto s = starts(name);
    ASSERT_GT(s.size(), 20u);
    EXPECT_LT(s[0], 200) << "first check within fast_interval";
    std::set<int64_t> gaps;
    for (size_t i = 1; i < s.size(); ++i) {
      int64_t gap = s[i] - s[i - 1];
      EXPECT_GE(gap, 800) << name;
      EXPECT_LE(gap, 1200) << name;
      gaps.insert(gap);
    }
    EXPECT_GT(gaps.size(), 5u) << "the interval moves at random";
  }
  EXPECT_NE(starts("a"), starts("b")) << "servers do not probe in step";
}

TEST_F(MonitorTest, AProbeNeverOverlapsTheLastOne) {
  start(load(two_servers(), kTcpCheck));
  at(200);
  ASSERT_TRUE(running("a"));
  uint64_t started = monitor_->probes_started();
  // The probe hangs (a real one ends at its time-out); time passes well beyond the interval.
  for (int64_t ms = 300; ms < 10'000; ms += 100) at(ms);
  EXPECT_EQ(monitor_->probes_started(), started) << "no second probe while one runs";
  EXPECT_EQ(monitor_->probes_running(), 2u);
  finish("a", true);
  at(10'000);
  EXPECT_FALSE(running("a")) << "the next one is scheduled from the completion";
  at(11'000);
  EXPECT_TRUE(running("a"));
}

TEST_F(MonitorTest, ReloadKeepsUnchangedServers) {
  start(load(two_servers(), kTcpCheck));
  at(200);
  finish("a", true);
  finish("b", true);
  ASSERT_EQ(server("web", "a").state, ServerState::Up);
  ASSERT_EQ(monitor_->set_admin("web", "b", AdminState::Drain), "");
  // b moves to another address: it starts over (but stays drained: the operator said so).
  monitor_->configure(load(
      "  web:\n    listen: [127.0.0.1:8000]\n    check: tcp1\n    servers: [{name: a, address: 127.0.0.1:9001}, "
      "{name: b, address: 127.0.0.1:9102}, {name: c, address: 127.0.0.1:9003}]\n",
      kTcpCheck));
  run();
  EXPECT_EQ(server("web", "a").state, ServerState::Up) << "same service, name, address and check";
  EXPECT_EQ(server("web", "b").state, ServerState::Drain);
  EXPECT_EQ(server("web", "b").check_state, ServerState::Unknown);
  EXPECT_EQ(server("web", "c").state, ServerState::Unknown);
  // A changed check starts every server over.
  monitor_->configure(load(two_servers(),
                           "  tcp1: {tcp: {}, interval: 2s, fast_interval: 200ms, timeout: 100ms, rise: 2, fall: 3}\n"));
  run();
  EXPECT_EQ(server("web", "a").state, ServerState::Unknown);
}

TEST_F(MonitorTest, OperatorStatesOverrideChecks) {
  start(load(two_servers(), kTcpCheck));
  at(200);
  finish("a", true);
  finish("b", true);
  EXPECT_EQ(monitor_->set_admin("web", "a", AdminState::Maint), "");
  EXPECT_EQ(server("web", "a").state, ServerState::Maint);
  EXPECT_EQ(server("web", "a").reason, "maint: set by an operator");
  EXPECT_EQ(monitor_->set_admin("web", "b", AdminState::Drain), "");
  at(1200);
  finish("b", false);
  at(1400);
  finish("b", false);
  at(1600);
  finish("b", false);
  EXPECT_EQ(server("web", "b").state, ServerState::Drain) << "checks run on, the operator's word wins";
  EXPECT_EQ(server("web", "b").check_state, ServerState::Down);
  EXPECT_EQ(monitor_->set_admin("web", "b", AdminState::None), "");
  EXPECT_EQ(server("web", "b").state, ServerState::Down) << "ready: the checks decide again";
  EXPECT_EQ(monitor_->set_admin("web", "zz", AdminState::Drain), "service web has no server 'zz'");
  EXPECT_EQ(monitor_->set_admin("nope", "a", AdminState::Drain), "no service 'nope'");
}

TEST_F(MonitorTest, AgentWordsSetStateAndWeight) {
  start(load("  web:\n    listen: [127.0.0.1:8000]\n    check: agent\n"
             "    servers: [{name: a, address: 127.0.0.1:9001, weight: 10}]\n",
             "  agent: {exec: {command: [/bin/true], agent_output: true}, interval: 1s, fast_interval: 200ms, "
             "timeout: 100ms, rise: 1, fall: 1, jitter: 0%}\n"));
  at(200);
  Observation o;
  o.ok = true;
  o.reason = "exit 0";
  o.agent = AgentWords{std::nullopt, 50, ""};
  finish_with("a", o);
  EXPECT_EQ(server("web", "a").state, ServerState::Up);
  EXPECT_EQ(server("web", "a").weight, 5u) << "50% of the configured 10";
  at(1200);
  o.agent = AgentWords{ServerState::Drain, std::nullopt, "backup running"};
  finish_with("a", o);
  EXPECT_EQ(server("web", "a").state, ServerState::Drain);
  EXPECT_EQ(server("web", "a").reason, "drain: the agent check says so (backup running)");
  EXPECT_EQ(server("web", "a").weight, 5u) << "the weight holds until the agent says another";
  at(2200);
  o.agent = AgentWords{ServerState::Up, 100, ""};
  finish_with("a", o);
  EXPECT_EQ(server("web", "a").state, ServerState::Up);
  EXPECT_EQ(server("web", "a").weight, 10u);
}

const char* kNoCheck =
    "  web:\n    listen: [127.0.0.1:8000]\n    timeouts: {connect: 300ms}\n"
    "    servers: [{name: a, address: 127.0.0.1:9001}, {name: b, address: 127.0.0.1:9002}, "
    "{name: c, address: 127.0.0.1:9003}]\n";

TEST_F(MonitorTest, PassiveEjectionBackoffAndReadmission) {
  start(load(kNoCheck));
  EXPECT_EQ(server("web", "a").state, ServerState::Up);
  EXPECT_EQ(server("web", "a").reason, "no check configured");
  EXPECT_EQ(monitor_->probes_started(), 0u) << "no check, no probes";
  int before = changes_;
  monitor_->on_passive("web", "a", PassiveKind::ConnectFailure, "connect refused", 0);
  run();
  ServerView a = server("web", "a");
  EXPECT_EQ(a.state, ServerState::Down) << "ejected on the first failed connect";
  EXPECT_EQ(a.reason, "ejected: connect refused seen by the proxy (1 in a row); re-checked after 1s");
  EXPECT_TRUE(a.ejected);
  EXPECT_EQ(a.backoff_ms, 1000);
  EXPECT_EQ(a.ejected_until_ms, 1'000'000 + 1000);
  EXPECT_EQ(changes_, before + 1);
  // More events while ejected change nothing.
  monitor_->on_passive("web", "a", PassiveKind::ConnectFailure, "connect refused", 0);
  EXPECT_EQ(server("web", "a").backoff_ms, 1000);

  at(999);
  EXPECT_FALSE(running("a")) << "not before the back-off";
  at(1000);
  auto p = running("a");
  ASSERT_TRUE(p) << "a TCP connect decides the re-admission";
  EXPECT_EQ(p->check.kind, config::CheckKind::Tcp);
  EXPECT_EQ(p->check.timeout, milliseconds(300)) << "the service's connect time-out";
  finish("a", false, "connect refused");
  a = server("web", "a");
  EXPECT_EQ(a.state, ServerState::Down);
  EXPECT_EQ(a.backoff_ms, 2000) << "a failed re-admission doubles the back-off";
  EXPECT_NE(a.reason.find("re-admission check failed (connect refused), next after 2s"), std::string::npos) << a.reason;
  at(2999);
  EXPECT_FALSE(running("a"));
  at(3000);
  finish("a", true);
  EXPECT_EQ(server("web", "a").state, ServerState::Up);
  EXPECT_FALSE(server("web", "a").ejected);
  EXPECT_EQ(server("web", "a").reason, "no check configured; re-admitted after a TCP connect");

  // Ejected again soon after: the back-off doubles with the ejection count.
  at(5000);
  monitor_->on_passive("web", "a", PassiveKind::ConnectFailure, "connect refused", 0);
  EXPECT_EQ(server("web", "a").backoff_ms, 2000);
  EXPECT_EQ(server("web", "a").ejections, 2u);
  at(7000);
  finish("a", true);
  // Quiet for max_backoff (30s) since the re-admission: back to the first back-off.
  at(37'000);
  monitor_->on_passive("web", "a", PassiveKind::ConnectFailure, "connect time-out", 0);
  EXPECT_EQ(server("web", "a").backoff_ms, 1000);
  EXPECT_EQ(server("web", "a").ejections, 1u);
}

TEST_F(MonitorTest, FailuresInARowOnlyCountWithoutASuccessBetween) {
  start(load("  web:\n    listen: [127.0.0.1:8000]\n    passive: {connect_failures: 3, resets: 2}\n"
             "    servers: [{name: a, address: 127.0.0.1:9001}]\n"));
  monitor_->on_passive("web", "a", PassiveKind::ConnectFailure, "connect refused", 10);
  monitor_->on_passive("web", "a", PassiveKind::ConnectFailure, "connect refused", 10);
  monitor_->on_passive("web", "a", PassiveKind::ConnectFailure, "connect refused", 11);  // a success between
  EXPECT_EQ(server("web", "a").state, ServerState::Up);
  monitor_->on_passive("web", "a", PassiveKind::ConnectFailure, "connect refused", 11);
  monitor_->on_passive("web", "a", PassiveKind::ConnectFailure, "connect refused", 11);
  EXPECT_EQ(server("web", "a").state, ServerState::Down);
  EXPECT_EQ(server("web", "a").reason, "ejected: connect refused seen by the proxy (3 in a row); re-checked after 1s");
}

TEST_F(MonitorTest, ResetsAndA5xxBurstEject) {
  start(load("  web:\n    listen: [127.0.0.1:8000]\n    passive: {resets: 2, http_5xx: 3, window: 1s}\n"
             "    servers: [{name: a, address: 127.0.0.1:9001}, {name: b, address: 127.0.0.1:9002}]\n"));
  monitor_->on_passive("web", "a", PassiveKind::Reset, "connection reset", 0);
  EXPECT_EQ(server("web", "a").state, ServerState::Up);
  monitor_->on_passive("web", "a", PassiveKind::Reset, "connection reset", 0);
  EXPECT_EQ(server("web", "a").state, ServerState::Down);
  // 5xx: three within the window; spread wider they do not eject.
  monitor_->on_passive("web", "b", PassiveKind::Http5xx, "HTTP 5xx", 0);
  at(600);
  monitor_->on_passive("web", "b", PassiveKind::Http5xx, "HTTP 5xx", 0);
  at(1200);
  monitor_->on_passive("web", "b", PassiveKind::Http5xx, "HTTP 5xx", 0);
  EXPECT_EQ(server("web", "b").state, ServerState::Up) << "the first one left the 1s window";
  at(1300);
  monitor_->on_passive("web", "b", PassiveKind::Http5xx, "HTTP 5xx", 0);
  EXPECT_EQ(server("web", "b").state, ServerState::Down);
  EXPECT_EQ(server("web", "b").reason, "ejected: 3 HTTP 5xx answers within 1s; re-checked after 1s");
}

TEST_F(MonitorTest, An5xxRunEndsWithAnyOtherAnswer) {
  start(load("  web:\n    listen: [127.0.0.1:8000]\n    passive: {http_5xx: 3, window: 10s}\n"
             "    servers: [{name: a, address: 127.0.0.1:9001}]\n"));
  // A busy server with a few errors among many good answers is not ejected...
  for (uint64_t good = 100; good < 200; good += 10) {
    monitor_->on_passive("web", "a", PassiveKind::Http5xx, "HTTP 5xx", good);
    monitor_->on_passive("web", "a", PassiveKind::Http5xx, "HTTP 5xx", good);
  }
  EXPECT_EQ(server("web", "a").state, ServerState::Up);
  // ...one answering only errors is.
  monitor_->on_passive("web", "a", PassiveKind::Http5xx, "HTTP 5xx", 190);
  EXPECT_EQ(server("web", "a").state, ServerState::Down);
}

TEST_F(MonitorTest, ACheckedServerComesBackThroughItsOwnCheck) {
  start(load(two_servers(), kTcpCheck));
  at(200);
  finish("a", true);
  finish("b", true);
  monitor_->on_passive("web", "a", PassiveKind::ConnectFailure, "connect refused", 0);
  EXPECT_EQ(server("web", "a").state, ServerState::Down);
  at(1200);  // the back-off ends at 1200, with the regular check
  auto p = running("a");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->check.name, "tcp1") << "the configured check, not a plain connect";
  finish("a", true);
  EXPECT_EQ(server("web", "a").state, ServerState::Up);
}

TEST_F(MonitorTest, EjectionsPastThePanicThresholdMakeTheDataPlanePanic) {
  start(load(kNoCheck));  // panic_threshold defaults to 50%
  monitor_->on_passive("web", "a", PassiveKind::ConnectFailure, "connect refused", 0);
  auto specs = [&] {
    std::vector<proxy::ServerSpec> out;
    for (const auto& s : service("web").servers) {
      proxy::ServerSpec spec;
      spec.name = s.server;
      spec.weight = s.weight;
      spec.state = s.state == ServerState::Down ? proxy::ServerState::Down : proxy::ServerState::Up;
      out.push_back(spec);
    }
    return out;
  };
  EXPECT_EQ(proxy::choose_candidates(specs(), 50).kind, proxy::Candidates::Kind::Active) << "2 of 3 up";
  monitor_->on_passive("web", "b", PassiveKind::ConnectFailure, "connect refused", 0);
  EXPECT_EQ(proxy::choose_candidates(specs(), 50).kind, proxy::Candidates::Kind::Panic)
      << "1 of 3 up: route to all rather than to one";
}

TEST_F(MonitorTest, ChangesOfOneTurnAreNotifiedOnce) {
  start(load(kNoCheck));
  int before = changes_;
  monitor_->on_passive("web", "a", PassiveKind::ConnectFailure, "connect refused", 0);
  monitor_->on_passive("web", "b", PassiveKind::ConnectFailure, "connect refused", 0);
  monitor_->on_passive("web", "c", PassiveKind::ConnectFailure, "connect refused", 0);
  EXPECT_EQ(changes_, before) << "posted, not called from inside";
  run();
  EXPECT_EQ(changes_, before + 1);
}

TEST_F(MonitorTest, SingleWriterFailsOverWithoutFailback) {
  start(load("  db:\n    listen: [127.0.0.1:3306]\n    balance: single-writer\n    check: tcp1\n"
             "    servers: [{name: a, address: 127.0.0.1:9001}, {name: b, address: 127.0.0.1:9002}]\n",
             "  tcp1: {tcp: {}, interval: 1s, fast_interval: 200ms, timeout: 100ms, rise: 1, fall: 1, jitter: 0%}\n"));
  EXPECT_FALSE(service("db").writer) << "no writer before the first checks";
  EXPECT_EQ(server("db", "a").weight, 0u);
  at(200);
  finish("a", true);
  finish("b", true);
  EXPECT_EQ(service("db").writer, "a");
  EXPECT_EQ(server("db", "a").weight, 1u);
  EXPECT_TRUE(server("db", "a").writer);
  EXPECT_EQ(server("db", "b").weight, 0u) << "the standby takes nothing";
  at(1200);
  finish("a", false);
  EXPECT_EQ(service("db").writer, "b");
  EXPECT_EQ(server("db", "a").weight, 0u);
  EXPECT_EQ(server("db", "b").weight, 1u);
  finish("b", true);
  at(2200);
  finish("a", true);
  EXPECT_EQ(server("db", "a").state, ServerState::Up);
  EXPECT_EQ(service("db").writer, "b") << "no failback";
  // Both gone: no writer, and the reason says why.
  at(3200);
  finish("a", false, "connect refused");
  finish("b", false, "connect refused");
  EXPECT_FALSE(service("db").writer);
  EXPECT_EQ(service("db").writer_reason,
            "no eligible writer: a down (connect refused); b down (connect refused)");
}

TEST_F(MonitorTest, GaleraWriterIsTheMostAdvancedSyncedNode) {
  start(load("  galera:\n    listen: [127.0.0.1:3306]\n    balance: single-writer\n    check: db\n"
             "    servers: [{name: a, address: 127.0.0.1:9001}, {name: b, address: 127.0.0.1:9002}]\n",
             "  db: {mysql: {user: hafront}, interval: 1s, fast_interval: 200ms, timeout: 100ms, rise: 1, fall: 1, "
             "jitter: 0%}\n"));
  auto view = [](int state, uint64_t committed) {
    Observation o;
    o.ok = true;
    o.reason = "Synced";
    GaleraView g;
    g.local_state = state;
    g.cluster_status = "Primary";
    g.last_committed = committed;
    o.galera = g;
    return o;
  };
  at(200);
  finish_with("a", view(4, 10));
  EXPECT_FALSE(service("galera").writer) << "b has no verdict yet: it may be the more advanced";
  EXPECT_EQ(service("galera").writer_reason, "no writer yet: waiting for the first check of b");
  finish_with("b", view(4, 20));
  EXPECT_EQ(service("galera").writer, "b") << "the most advanced Synced node";
  at(1200);
  finish_with("a", view(4, 30));
  EXPECT_EQ(service("galera").writer, "b") << "no failback to a, now ahead";
  finish_with("b", view(2, 31));  // b becomes a donor: its check still passes, Galera says no writes
  EXPECT_EQ(service("galera").writer, "a");
  EXPECT_EQ(server("galera", "b").state, ServerState::Up);
  EXPECT_EQ(server("galera", "b").weight, 0u);
  EXPECT_EQ(server("galera", "b").evidence.wsrep_local_state, 2);
}

}  // namespace
}  // namespace hafront::health
