// The exec check with small scripts in a temporary folder: exit codes, agent words, the
// environment, a hung command killed with its whole process group at the time-out, huge
// output, cancel, and the waitpid-polling fallback.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "health/probe_impl.h"
#include "probe_test_server.h"
#include "temp_dir.h"

namespace hafront::health {
namespace {

using namespace std::chrono_literals;
using namespace test;

class ExecProbeTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { detail::set_exec_reaping_by_polling(GetParam()); }
  void TearDown() override { detail::set_exec_reaping_by_polling(false); }

  std::string script(const std::string& name, const std::string& body) {
    std::string path = (dir_.path / name).string();
    std::ofstream(path) << "#!/bin/sh\n" << body;
    ::chmod(path.c_str(), 0755);
    return path;
  }
  std::string path(const std::string& name) const { return (dir_.path / name).string(); }
  std::string slurp(const std::string& name) const {
    std::ifstream f(path(name));
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  config::Check exec_check(std::vector<std::string> command, std::chrono::milliseconds timeout = 2000ms,
                           bool agent = false) {
    auto c = check_of(config::CheckKind::Exec, timeout);
    c.exec.command = std::move(command);
    c.exec.agent_output = agent;
    return c;
  }
  // Turns the loop until `pred` holds (a safety limit far beyond what it needs).
  void run_until(asio::io_context& io, const std::function<bool()>& pred) {
    auto until = std::chrono::steady_clock::now() + 10s;
    while (!pred() && std::chrono::steady_clock::now() < until) {
      if (io.stopped()) io.restart();
      io.run_one_for(10ms);
    }
  }
  static bool gone(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }
  // Gone or a zombie (a grandchild is reparented: whoever reaps it, it is dead).
  static bool dead(pid_t pid) {
    if (gone(pid)) return true;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), {});
    size_t close = text.rfind(')');
    return close != std::string::npos && close + 2 < text.size() && text[close + 2] == 'Z';
  }

  test_support::TempDir dir_{"hafront-exec-probe-"};
};

TEST_P(ExecProbeTest, ExitZeroPasses) {
  asio::io_context io;
  auto r = run_probe(io, exec_check({script("ok", "echo all good\nexit 0\n")}), target_at(3306));
  EXPECT_TRUE(r.obs.ok);
  EXPECT_EQ(r.obs.run, ProbeRun::Answered);
  EXPECT_EQ(r.obs.reason, "exit 0: all good");
  EXPECT_EQ(r.obs.exit_code, 0);
  EXPECT_EQ(r.obs.body_excerpt, "all good ");
}

TEST_P(ExecProbeTest, NonZeroExitFailsWithTheFirstLine) {
  asio::io_context io;
  auto r = run_probe(io, exec_check({script("bad", "echo 'replication lag 300s' >&2\necho second\nexit 3\n")}),
                     target_at(3306));
  EXPECT_FALSE(r.obs.ok);
  EXPECT_EQ(r.obs.run, ProbeRun::Answered);
  EXPECT_EQ(r.obs.reason, "exit 3: replication lag 300s");
  EXPECT_EQ(r.obs.exit_code, 3);
}

TEST_P(ExecProbeTest, ArgumentsWithoutAShellAndTheEnvironment) {
  asio::io_context io;
  std::string s = script("env", "printf '%s|' \"$1\" \"$2\" \"$HAFRONT_SERVICE\" \"$HAFRONT_SERVER\" "
                                "\"$HAFRONT_ADDRESS\" \"$HAFRONT_PORT\" \"$HAFRONT_SECRET_LEAK\"\n"
                                "read line; echo \"stdin:$line\"\n");
  ::setenv("HAFRONT_SECRET_LEAK", "leaked", 1);  // the daemon's environment stays out
  auto check = exec_check({s, "two words", "$HOME;ls"});
  check.port = 9200;  // the check's port, not the server's
  auto r = run_probe(io, check, target_at(3306));
  ::unsetenv("HAFRONT_SECRET_LEAK");
  EXPECT_TRUE(r.obs.ok) << r.obs.reason;
  EXPECT_EQ(r.obs.reason, "exit 0: two words|$HOME;ls|svc|srv-1|127.0.0.1|9200||stdin:");
}

TEST_P(ExecProbeTest, AgentWords) {
  asio::io_context io;
  auto r = run_probe(io, exec_check({script("agent", "echo 'up 75% #all good'\n")}, 2000ms, true), target_at(1));
  EXPECT_TRUE(r.obs.ok);
  ASSERT_TRUE(r.obs.agent);
  EXPECT_EQ(r.obs.agent->state, ServerState::Up);
  EXPECT_EQ(r.obs.agent->weight_percent, 75u);
  EXPECT_EQ(r.obs.agent->message, "all good");

  auto down = run_probe(io, exec_check({script("agent-down", "echo 'down #disk full'\nexit 0\n")}, 2000ms, true),
                        target_at(1));
  EXPECT_FALSE(down.obs.ok);
  EXPECT_EQ(down.obs.reason, "agent says down: disk full");
  EXPECT_EQ(down.obs.exit_code, 0);

  auto drain = run_probe(io, exec_check({script("agent-drain", "echo 'drain'\n")}, 2000ms, true), target_at(1));
  EXPECT_TRUE(drain.obs.ok);
  EXPECT_EQ(drain.obs.agent->state, ServerState::Drain);

  auto garbage = run_probe(
      io, exec_check({script("agent-garbage", "printf 'x\\001\\377 75 %%%% downn --up-- 5%%%%\\r\\ndown\\n'\n")}, 2000ms, true),
      target_at(1));
  EXPECT_TRUE(garbage.obs.ok) << garbage.obs.reason;  // exit 0, nothing understood
  ASSERT_TRUE(garbage.obs.agent);
  EXPECT_EQ(*garbage.obs.agent, AgentWords{});  // and the second line's "down" is not read
}

TEST_P(ExecProbeTest, HungCommandAndItsChildrenAreKilledAtTheTimeout) {
  asio::io_context io;
  std::string s = script("hang", "sleep 30 &\necho $! > \"$(dirname \"$0\")/grandchild\"\n"
                                 "echo $$ > \"$(dirname \"$0\")/pid\"\nwait\n");
  auto r = run_probe(io, exec_check({s}, 200ms), target_at(1));
  EXPECT_FALSE(r.obs.ok);
  EXPECT_EQ(r.obs.run, ProbeRun::TimedOut);
  EXPECT_EQ(r.obs.reason, "timed out after 200ms (killed)");
  pid_t pid = std::atoi(slurp("pid").c_str());
  pid_t grandchild = std::atoi(slurp("grandchild").c_str());
  ASSERT_GT(pid, 0);
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(gone(pid)) << "the command was not reaped";
  run_until(io, [&] { return dead(grandchild); });
  EXPECT_TRUE(dead(grandchild)) << "its background child still runs";
}

TEST_P(ExecProbeTest, HugeOutputIsDrainedAndBounded) {
  asio::io_context io;
  // 8 MB on the pipe, then a failing exit: the probe keeps reading (so the command is not
  // blocked on a full pipe), keeps 4 KiB, and reports the first line, cut short.
  auto r = run_probe(io, exec_check({script("loud", "head -c 8000000 /dev/zero | tr '\\0' 'y'\nexit 4\n")}, 5000ms),
                     target_at(1));
  EXPECT_FALSE(r.obs.ok);
  EXPECT_EQ(r.obs.exit_code, 4);
  EXPECT_EQ(r.obs.reason, "exit 4: " + std::string(200, 'y') + "...");
  EXPECT_EQ(r.obs.body_excerpt, std::string(256, 'y'));
}

TEST_P(ExecProbeTest, EndlessOutputIsKilledAtTheTimeout) {
  asio::io_context io;
  auto r = run_probe(io, exec_check({"/usr/bin/yes"}, 200ms), target_at(1));
  EXPECT_EQ(r.obs.run, ProbeRun::TimedOut);
  EXPECT_EQ(r.obs.reason, "timed out after 200ms (killed)");
}

TEST_P(ExecProbeTest, KilledBySignal) {
  asio::io_context io;
  auto r = run_probe(io, exec_check({script("suicide", "echo bye\nkill -TERM $$\n")}), target_at(1));
  EXPECT_FALSE(r.obs.ok);
  EXPECT_EQ(r.obs.reason, "killed by signal 15: bye");
}

TEST_P(ExecProbeTest, MissingProgramIsALocalError) {
  asio::io_context io;
  auto r = run_probe(io, exec_check({path("does-not-exist")}), target_at(1));
  EXPECT_FALSE(r.obs.ok);
  EXPECT_EQ(r.obs.run, ProbeRun::LocalError);
  EXPECT_EQ(r.obs.reason, "cannot run " + path("does-not-exist") + ": No such file or directory");
}

TEST_P(ExecProbeTest, CancelKillsAndReapsWithoutCalling) {
  asio::io_context io;
  std::string s = script("wait", "echo $$ > \"$(dirname \"$0\")/pid\"\nexec sleep 30\n");
  int calls = 0;
  auto probe = start_probe(io, exec_check({s}, 5000ms), target_at(1), [&](Observation) { ++calls; });
  run_until(io, [&] { return !slurp("pid").empty(); });
  pid_t pid = std::atoi(slurp("pid").c_str());
  ASSERT_GT(pid, 0);
  probe.reset();  // destroying the handle cancels
  run_until(io, [&] { return gone(pid); });
  EXPECT_TRUE(gone(pid)) << "the cancelled command was not reaped";
  io.restart();
  io.run_for(50ms);
  EXPECT_EQ(calls, 0);
}

INSTANTIATE_TEST_SUITE_P(Reaping, ExecProbeTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "WaitpidPolling" : "Pidfd"; });

}  // namespace
}  // namespace hafront::health
