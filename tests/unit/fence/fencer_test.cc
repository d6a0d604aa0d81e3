// The fence executor's topology logic with scripted agent results (no processes): level
// order, all devices of a level, confirmation with status, escalation, retries within the
// deadline, delays and cancellation.
#include <gtest/gtest.h>

#include <deque>

#include "config/config.h"
#include "fence/fencer.h"

namespace hafront::fence {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;

// Results are scripted per "device[:plug] action"; the last one repeats.
class FakeRunner : public Runner {
 public:
  explicit FakeRunner(asio::io_context& io) : io_(io) {}

  class FakeHandle : public Handle {
   public:
    void cancel() override { cancelled = true; }
    bool cancelled = false;
  };

  void script(const std::string& key, std::vector<AgentResult> results) { scripts_[key] = {results.begin(), results.end()}; }

  std::shared_ptr<Handle> run(const AgentRequest& req, Done done) override {
    std::string dev = req.params.count("name") ? req.params.at("name") : req.agent;
    std::string key = dev + (req.plug ? ":" + *req.plug : "") + " " + req.action;
    calls.push_back(key);
    auto h = std::make_shared<FakeHandle>();
    AgentResult r;
    auto it = scripts_.find(key);
    if (it == scripts_.end() || it->second.empty()) {
      r.exec = ExecStatus::Error;
      r.reason = "unscripted " + key;
    } else {
      r = it->second.front();
      if (it->second.size() > 1) it->second.pop_front();
    }
    asio::post(io_, [h, r, done] {
      if (!h->cancelled) done(r);
    });
    return h;
  }

  std::vector<std::string> calls;

 private:
  asio::io_context& io_;
  std::map<std::string, std::deque<AgentResult>> scripts_;
};

AgentResult ok() {
  AgentResult r;
  r.exec = ExecStatus::Done;
  r.answer = Answer::Ok;
  return r;
}
AgentResult power(Answer a) {
  AgentResult r;
  r.exec = ExecStatus::Done;
  r.answer = a;
  return r;
}
AgentResult failed(const std::string& why) {
  AgentResult r;
  r.exec = ExecStatus::Done;
  r.answer = Answer::Failed;
  r.reason = why;
  return r;
}

// n2 has level 1 = its BMC, level 2 = both PDU outlets; n3 has no fencing. Each device
// carries its own name as a parameter so the fake runner can tell them apart.
std::shared_ptr<const config::Config> topology(const std::string& timeout = "10s", const std::string& action = "off") {
  std::string yaml = R"(
cluster:
  name: t
  mode: corosync
  fencing: {timeout: )" + timeout + R"(, action: )" + action + R"(}
  nodes:
    - {name: n1, id: 1, address: 192.0.2.1}
    - {name: n2, id: 2, address: 192.0.2.2, fencing: [[ipmi-n2], [pdu-a:3, pdu-b:3]]}
    - {name: n3, id: 3, address: 192.0.2.3}
fence_devices:
  ipmi-n2: {agent: fence_ipmilan, ip: 198.51.100.2, name: ipmi-n2}
  pdu-a: {agent: fence_apc_snmp, ip: 198.51.100.50, name: pdu-a}
  pdu-b: {agent: fence_apc_snmp, ip: 198.51.100.51, name: pdu-b}
)";
  auto r = config::load_string(yaml, "fencer.yaml");
  EXPECT_TRUE(r.ok());
  for (const auto& d : r.diagnostics) {
    if (d.severity == config::Diagnostic::Severity::Error) ADD_FAILURE() << d.format();
  }
  return r.config;
}

struct Harness {
  asio::io_context io;
  FakeRunner runner{io};
  Fencer fencer{io, runner};
  std::vector<FenceOutcome> outcomes;
  std::vector<std::string> alerts;

  explicit Harness(std::shared_ptr<const config::Config> c = topology()) {
    fencer.set_config(std::move(c));
    fencer.set_alert([this](const std::string& m) { alerts.push_back(m); });
  }
  void fence(const std::string& node, std::chrono::milliseconds delay = 0ms) {
    EXPECT_TRUE(fencer.fence(node, delay, [this](const FenceOutcome& o) { outcomes.push_back(o); }));
  }
};

TEST(Fencer, FirstLevelOffConfirmedByStatus) {
  Harness h;
  h.runner.script("ipmi-n2 off", {ok()});
  h.runner.script("ipmi-n2 status", {power(Answer::Off)});
  h.fence("n2");
  EXPECT_TRUE(h.fencer.busy("n2"));
  h.io.run();
  ASSERT_EQ(h.outcomes.size(), 1u);
  const auto& o = h.outcomes[0];
  EXPECT_TRUE(o.success);
  EXPECT_EQ(o.level, 1);
  EXPECT_EQ(o.devices, std::vector<std::string>{"ipmi-n2"});
  EXPECT_EQ(h.runner.calls, (std::vector<std::string>{"ipmi-n2 off", "ipmi-n2 status"}));
  EXPECT_FALSE(h.fencer.busy("n2"));
}

TEST(Fencer, FailedLevelEscalatesAndEveryDeviceOfALevelMustSucceed) {
  Harness h;
  h.runner.script("ipmi-n2 off", {failed("BMC cannot act")});
  h.runner.script("pdu-a:3 off", {ok()});
  h.runner.script("pdu-b:3 off", {ok()});
  h.runner.script("pdu-a:3 status", {power(Answer::Off)});
  h.runner.script("pdu-b:3 status", {power(Answer::Off)});
  h.fence("n2");
  h.io.run();
  ASSERT_EQ(h.outcomes.size(), 1u);
  EXPECT_TRUE(h.outcomes[0].success);
  EXPECT_EQ(h.outcomes[0].level, 2);
  EXPECT_EQ(h.outcomes[0].devices, (std::vector<std::string>{"pdu-a:3", "pdu-b:3"}));
  // Both outlets are switched off before either is confirmed.
  EXPECT_EQ(h.runner.calls, (std::vector<std::string>{"ipmi-n2 off", "pdu-a:3 off", "pdu-b:3 off", "pdu-a:3 status",
                                                      "pdu-b:3 status"}));
  // The failed run is in the outcome with its reason.
  EXPECT_EQ(h.outcomes[0].runs[0].result.reason, "BMC cannot act");
}

TEST(Fencer, OneOutletFailingFailsTheLevel) {
  Harness h(topology("1500ms"));
  h.runner.script("ipmi-n2 off", {failed("no route")});
  h.runner.script("pdu-a:3 off", {ok()});
  h.runner.script("pdu-b:3 off", {failed("snmp timeout")});
  h.runner.script("pdu-a:3 status", {power(Answer::Off)});
  h.fence("n2");
  h.io.run();
  ASSERT_EQ(h.outcomes.size(), 1u);
  EXPECT_FALSE(h.outcomes[0].success);
  EXPECT_NE(h.outcomes[0].reason.find("pdu-b:3 off: failed: snmp timeout"), std::string::npos) << h.outcomes[0].reason;
  EXPECT_NE(h.outcomes[0].reason.find("level 1: ipmi-n2 off: failed: no route"), std::string::npos);
  // A single outlet going off does not count: status was never asked.
  for (const auto& c : h.runner.calls) EXPECT_EQ(c.find("status"), std::string::npos) << c;
}

TEST(Fencer, StatusStillOnIsNotProof) {
  Harness h(topology("1500ms"));
  h.runner.script("ipmi-n2 off", {ok()});  // the agent claims success ...
  h.runner.script("ipmi-n2 status", {power(Answer::On)});  // ... but the node is on
  h.runner.script("pdu-a:3 off", {ok()});
  h.runner.script("pdu-b:3 off", {ok()});
  h.runner.script("pdu-a:3 status", {power(Answer::Off)});
  h.runner.script("pdu-b:3 status", {power(Answer::Off)});
  h.fence("n2");
  h.io.run();
  ASSERT_EQ(h.outcomes.size(), 1u);
  EXPECT_TRUE(h.outcomes[0].success);
  EXPECT_EQ(h.outcomes[0].level, 2);
}

TEST(Fencer, EveryLevelFailingRetriesUntilTheDeadlineThenReports) {
  Harness h(topology("1500ms"));
  h.runner.script("ipmi-n2 off", {failed("unreachable")});
  h.runner.script("pdu-a:3 off", {failed("unreachable")});
  h.runner.script("pdu-b:3 off", {failed("unreachable")});
  h.fence("n2");
  h.io.run();
  ASSERT_EQ(h.outcomes.size(), 1u);
  const auto& o = h.outcomes[0];
  EXPECT_FALSE(o.success);
  // Round 1 fails at once, the 1 s back-off fits in 1.5 s, round 2 fails, a 2 s back-off
  // does not fit: two rounds, then the report.
  EXPECT_EQ(o.rounds, 2);
  EXPECT_EQ(h.runner.calls.size(), 6u);
  EXPECT_NE(o.reason.find("every level failed (2 attempt(s))"), std::string::npos) << o.reason;
  // Each level's latest failure, with the attempt it came from.
  EXPECT_NE(o.reason.find("level 1: ipmi-n2 off: "), std::string::npos) << o.reason;
  EXPECT_NE(o.reason.find("level 2: "), std::string::npos) << o.reason;
  EXPECT_NE(o.reason.find("(attempt 2)"), std::string::npos) << o.reason;
}

TEST(Fencer, StatusIsSkippedForAgentsWithoutIt) {
  Harness h;
  h.fencer.set_status_support([](const std::string& agent) { return agent != "fence_ipmilan"; });
  h.runner.script("ipmi-n2 off", {ok()});
  h.fence("n2");
  h.io.run();
  ASSERT_EQ(h.outcomes.size(), 1u);
  EXPECT_TRUE(h.outcomes[0].success);
  EXPECT_EQ(h.runner.calls, std::vector<std::string>{"ipmi-n2 off"});
}

TEST(Fencer, NodeWithoutLevelsFailsWithAReason) {
  Harness h;
  h.fence("n3");
  h.io.run();
  ASSERT_EQ(h.outcomes.size(), 1u);
  EXPECT_FALSE(h.outcomes[0].success);
  EXPECT_EQ(h.outcomes[0].reason, "node n3 has no fencing levels configured");
  EXPECT_TRUE(h.runner.calls.empty());
}

TEST(Fencer, CancelDuringTheDelayRunsNothingAndReportsNothing) {
  Harness h;
  h.runner.script("ipmi-n2 off", {ok()});
  h.fence("n2", 200ms);
  EXPECT_FALSE(h.fencer.fence("n2", 0ms, [](const FenceOutcome&) {}));  // one request per node
  asio::steady_timer t(h.io);
  t.expires_after(20ms);
  t.async_wait([&](boost::system::error_code) { h.fencer.cancel("n2"); });
  h.io.run();
  EXPECT_TRUE(h.outcomes.empty());
  EXPECT_TRUE(h.runner.calls.empty());
  EXPECT_FALSE(h.fencer.busy("n2"));
}

TEST(Fencer, RebootSwitchesEveryDeviceOfTheLevelBackOnAfterTheConfirmedOff) {
  Harness h(topology("10s", "reboot"));
  h.runner.script("ipmi-n2 off", {failed("no route")});
  h.runner.script("pdu-a:3 off", {ok()});
  h.runner.script("pdu-b:3 off", {ok()});
  h.runner.script("pdu-a:3 status", {power(Answer::Off)});
  h.runner.script("pdu-b:3 status", {power(Answer::Off)});
  h.runner.script("pdu-a:3 on", {ok()});
  h.runner.script("pdu-b:3 on", {failed("outlet locked")});
  h.fence("n2");
  h.io.run();
  ASSERT_EQ(h.outcomes.size(), 1u);
  // Both outlets off and confirmed before either comes back: a dual supply never keeps
  // the node running through the reboot.
  EXPECT_EQ(h.runner.calls, (std::vector<std::string>{"ipmi-n2 off", "pdu-a:3 off", "pdu-b:3 off", "pdu-a:3 status",
                                                      "pdu-b:3 status", "pdu-a:3 on", "pdu-b:3 on"}));
  // The confirmed off is the proof, reported before the power comes back; the outlet that
  // stayed off is an alert.
  EXPECT_TRUE(h.outcomes[0].success);
  EXPECT_EQ(h.outcomes[0].level, 2);
  EXPECT_TRUE(h.outcomes[0].reason.empty()) << h.outcomes[0].reason;
  ASSERT_EQ(h.alerts.size(), 1u);
  EXPECT_NE(h.alerts[0].find("pdu-b:3 on: failed: outlet locked"), std::string::npos) << h.alerts[0];
}

TEST(Fencer, DelayComesBeforeTheFirstRun) {
  Harness h;
  h.runner.script("ipmi-n2 off", {ok()});
  h.runner.script("ipmi-n2 status", {power(Answer::Off)});
  h.fence("n2", 50ms);
  h.io.run();
  ASSERT_EQ(h.outcomes.size(), 1u);
  EXPECT_EQ(h.outcomes[0].delay, 50ms);
  EXPECT_GE(h.outcomes[0].started - h.outcomes[0].requested, 50ms);
}

}  // namespace
}  // namespace hafront::fence
