// The agent runner against small scripted agents (real child processes in a temporary
// folder): the stdin protocol, secrets, the exit-code API, time-outs that kill the whole
// process group, garbage and missing agents.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fence/agent_runner.h"

namespace hafront::fence {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class AgentRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hafront-agents-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes an executable agent script named fence_NAME.
  void agent(const std::string& name, const std::string& body) {
    std::string path = dir_ + "/fence_" + name;
    std::ofstream(path) << "#!/bin/sh\n" << body;
    ::chmod(path.c_str(), 0755);
  }
  std::string file(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  std::string slurp(const std::string& name) {
    std::ifstream f(dir_ + "/" + name);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  AgentResult run(AgentRequest req) { return run_agent_sync({dir_}, req); }
  AgentRequest request(const std::string& name, const std::string& action) {
    AgentRequest r;
    r.agent = "fence_" + name;
    r.action = action;
    r.timeout = 5s;
    return r;
  }

  std::string dir_;
};

TEST_F(AgentRunnerTest, ParametersAndSecretsGoOnStdinNeverInArgv) {
  agent("dump", "cat > \"$(dirname \"$0\")/stdin.txt\"\necho \"$0 $*\" > \"$(dirname \"$0\")/argv.txt\"\n"
                "env > \"$(dirname \"$0\")/env.txt\"\necho 'Success: Powered OFF'\nexit 0\n");
  auto req = request("dump", "off");
  req.params = {{"ip", "198.51.100.5"}, {"lanplus", "1"}};
  req.secret_files = {{"password", file("pw", "s3cret-value\n")}};
  req.plug = "7";
  ::setenv("PCMK_service", "pacemaker-fenced", 1);  // must never reach the agent
  ::setenv("HAFRONT_LEAK_CHECK", "yes", 1);
  AgentResult r = run(req);
  ::unsetenv("PCMK_service");
  ::unsetenv("HAFRONT_LEAK_CHECK");
  EXPECT_EQ(r.exec, ExecStatus::Done);
  EXPECT_EQ(r.answer, Answer::Ok);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(slurp("stdin.txt"), "action=off\nip=198.51.100.5\nlanplus=1\npassword=s3cret-value\nport=7\n");
  EXPECT_EQ(slurp("argv.txt").find("s3cret"), std::string::npos);
  std::string env = slurp("env.txt");
  EXPECT_EQ(env.find("PCMK_service"), std::string::npos);
  EXPECT_EQ(env.find("HAFRONT_LEAK_CHECK"), std::string::npos);
  EXPECT_NE(env.find("PYTHONWARNINGS=ignore"), std::string::npos);
}

TEST_F(AgentRunnerTest, StatusExitCodesFollowTheAgentApi) {
  agent("on", "cat >/dev/null; echo 'Status: ON'; exit 0\n");
  agent("off", "cat >/dev/null; echo 'Status: OFF'; exit 2\n");
  agent("err", "cat >/dev/null; echo '2026-11-22 10:00:00,000 ERROR: Unable to connect/login to fencing device' >&2; "
              "echo \"2026-11-22 10:00:00,000 ERROR: Please use '-h' for usage\" >&2; exit 1\n");
  EXPECT_EQ(run(request("on", "status")).answer, Answer::On);
  EXPECT_EQ(run(request("off", "status")).answer, Answer::Off);
  AgentResult e = run(request("err", "status"));
  EXPECT_EQ(e.exec, ExecStatus::Done);
  EXPECT_EQ(e.answer, Answer::Failed);
  EXPECT_EQ(e.reason, "Unable to connect/login to fencing device");
  EXPECT_EQ(e.exit_code, 1);
  // For off, exit 2 is not part of the API.
  AgentResult two = run(request("off", "off"));
  EXPECT_EQ(two.exec, ExecStatus::Error);
  EXPECT_NE(two.reason.find("exit code 2 is not in the fence agent API"), std::string::npos);
}

TEST_F(AgentRunnerTest, UnexpectedExitCodeAndContradictoryOutputAreErrors) {
  agent("weird", "cat >/dev/null; exit 42\n");
  agent("liar", "cat >/dev/null; echo 'Status: OFF'; exit 0\n");
  agent("garbage", "cat >/dev/null; head -c 3000 /dev/urandom; exit 0\n");
  AgentResult w = run(request("weird", "off"));
  EXPECT_EQ(w.exec, ExecStatus::Error);
  EXPECT_EQ(w.exit_code, 42);
  AgentResult l = run(request("liar", "status"));
  EXPECT_EQ(l.exec, ExecStatus::Error);
  EXPECT_EQ(l.answer, Answer::None);
  EXPECT_NE(l.reason.find("contradicts"), std::string::npos);
  // Binary noise with exit 0 from off is what the API calls success; the reason stays printable.
  AgentResult g = run(request("garbage", "status"));
  for (char c : g.reason) EXPECT_TRUE(c >= 0x20 && c < 0x7f);
}

TEST_F(AgentRunnerTest, TimeoutKillsTheWholeProcessGroup) {
  // The agent starts a grandchild that would outlive it, records its pid, then hangs.
  agent("hang", "cat >/dev/null; sleep 300 & echo $! > \"$(dirname \"$0\")/child.pid\"; sleep 300\n");
  auto req = request("hang", "off");
  req.timeout = 300ms;
  AgentResult r = run(req);
  EXPECT_EQ(r.exec, ExecStatus::Timeout);
  EXPECT_GE(r.elapsed, 300ms);
  EXPECT_LT(r.elapsed, 5s);
  pid_t child = std::atoi(slurp("child.pid").c_str());
  ASSERT_GT(child, 0);
  // The grandchild was killed with the group (it is reparented to init, which reaps it).
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    std::ifstream stat("/proc/" + std::to_string(child) + "/stat");
    std::string s((std::istreambuf_iterator<char>(stat)), {});
    gone = s.empty() || s.find(") Z ") != std::string::npos;
    if (!gone) ::usleep(10'000);
  }
  EXPECT_TRUE(gone) << "grandchild " << child << " survived the time-out";
}

TEST_F(AgentRunnerTest, MissingAgentSecretAndDeathBySignal) {
  AgentResult missing = run(request("nonexistent", "off"));
  EXPECT_EQ(missing.exec, ExecStatus::NotInstalled);
  EXPECT_NE(missing.reason.find("fence_nonexistent"), std::string::npos);

  agent("ok", "cat >/dev/null; exit 0\n");
  auto req = request("ok", "off");
  req.secret_files = {{"password", dir_ + "/no-such-file"}};
  AgentResult nosecret = run(req);
  EXPECT_EQ(nosecret.exec, ExecStatus::Error);
  EXPECT_NE(nosecret.reason.find("cannot read secret file"), std::string::npos);

  agent("segv", "cat >/dev/null; kill -SEGV $$\n");
  AgentResult segv = run(request("segv", "off"));
  EXPECT_EQ(segv.exec, ExecStatus::Error);
  EXPECT_NE(segv.reason.find("signal 11"), std::string::npos);

  // A file that is not executable is not an installed agent.
  file("fence_plain", "#!/bin/sh\nexit 0\n");
  EXPECT_EQ(run(request("plain", "off")).exec, ExecStatus::NotInstalled);
}

TEST_F(AgentRunnerTest, SecretsAreRedactedFromWhatTheAgentPrints) {
  agent("echo", "read a; read b; echo \"login failed for $b\" >&2; echo \"ERROR: bad $b\" >&2; exit 1\n");
  auto req = request("echo", "off");
  req.secret_files = {{"password", file("pw", "hunter22\n")}};
  AgentResult r = run(req);
  EXPECT_EQ(r.answer, Answer::Failed);
  EXPECT_EQ(r.reason.find("hunter22"), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find("***"), std::string::npos) << r.reason;
}

TEST_F(AgentRunnerTest, HugeOutputIsBoundedAndAgentsIgnoringStdinWork) {
  agent("flood", "head -c 5000000 /dev/zero | tr '\\0' x; exit 0\n");
  AgentResult r = run(request("flood", "list"));
  EXPECT_TRUE(r.ok());
  EXPECT_LE(r.output.size(), 64u * 1024u);
}

TEST_F(AgentRunnerTest, CancelKillsTheRunAndNeverReports) {
  agent("slow", "cat >/dev/null; echo $$ > \"$(dirname \"$0\")/slow.pid\"; sleep 300\n");
  boost::asio::io_context io;
  AgentRunner runner(io, {dir_});
  bool reported = false;
  auto req = request("slow", "off");
  req.timeout = 60s;
  auto handle = runner.run(req, [&](AgentResult) { reported = true; });
  boost::asio::steady_timer t(io);
  // Cancel once the agent is running.
  std::function<void()> poll = [&] {
    if (fs::exists(dir_ + "/slow.pid") && !slurp("slow.pid").empty()) {
      handle->cancel();
      return;
    }
    t.expires_after(10ms);
    t.async_wait([&](boost::system::error_code) { poll(); });
  };
  poll();
  io.run();
  EXPECT_FALSE(reported);
  handle.reset();  // nothing else holds a finished run
  EXPECT_EQ(runner.running(), 0u);
  pid_t pid = std::atoi(slurp("slow.pid").c_str());
  EXPECT_NE(::kill(pid, 0), 0) << "the cancelled agent still runs";
}

TEST(AgentStdin, LineBreaksInValuesAreRefused) {
  AgentRequest req;
  req.action = "off";
  req.params = {{"ip", "1.2.3.4\naction=on"}};
  std::vector<std::string> secrets;
  std::string error;
  EXPECT_FALSE(render_stdin(req, secrets, error));
  EXPECT_NE(error.find("line break"), std::string::npos);
}

}  // namespace
}  // namespace hafront::fence
