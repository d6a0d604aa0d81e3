// The exec check: runs the command (argv, no shell) with posix_spawn, in a session of its
// own (one kill(-pid) reaches everything it starts), stdin from /dev/null, stdout and
// stderr into one pipe read from the loop (the first kMaxExecOutput bytes kept, the rest
// drained), a small clean environment plus HAFRONT_SERVICE, HAFRONT_SERVER,
// HAFRONT_ADDRESS and HAFRONT_PORT. The child is reaped from the loop through a pidfd
// (pidfd_open; polling waitpid(WNOHANG) every 20 ms where the kernel lacks it). At the
// time-out the whole process group is killed with SIGKILL and reaped.
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/posix/stream_descriptor.hpp>

#include <array>
#include <cerrno>
#include <cstring>

#include "common/spawn.h"
#include "config/units.h"
#include "health/probe_impl.h"
#include "health/probe_verdicts.h"

namespace hafront::health::detail {

namespace {

bool g_reap_by_polling = false;

constexpr std::chrono::milliseconds kPollInterval{20};
// After the command exits, its pipe normally reaches EOF at once (its group is killed). A
// grandchild that left the group could hold it open: do not wait for it longer than this.
constexpr std::chrono::milliseconds kPipeGrace{100};
// After SIGKILL at the time-out: a child stuck in the kernel (D state) may take a while to
// die; the probe ends after this much more and the reaping goes on in the background.
constexpr std::chrono::milliseconds kKillGrace{500};

class ExecProbe final : public ProbeBase {
 public:
  ExecProbe(asio::io_context& io, const config::Check& check, const ProbeTarget& target,
            const config::Endpoint& endpoint, ProbeDone done)
      : ProbeBase(io, check, std::move(done)),
        exec_(check.exec),
        target_(target),
        endpoint_(endpoint),
        pidfd_(io),
        out_(io),
        poll_(io),
        grace_(io) {}

  ~ExecProbe() override {
    // Normally the child is reaped by now; if the loop went away first, do it here (it was
    // killed, so this wait is short).
    if (pid_ > 0 && !reaped_) {
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

 private:
  std::shared_ptr<ExecProbe> self() { return std::static_pointer_cast<ExecProbe>(shared_from_this()); }

  void begin() override {
    if (exec_.command.empty()) return finish_soon(failed(ProbeRun::LocalError, "no command to run"));
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      return finish_soon(failed(ProbeRun::LocalError, std::string("cannot create a pipe: ") + std::strerror(errno)));
    }
    std::vector<std::string> env = base_environment();
    env.push_back("HAFRONT_SERVICE=" + target_.service);
    env.push_back("HAFRONT_SERVER=" + target_.server);
    env.push_back("HAFRONT_ADDRESS=" + endpoint_.address.str());
    env.push_back("HAFRONT_PORT=" + std::to_string(endpoint_.port));
    int rc = spawn_in_session(exec_.command, env, SpawnFds{-1, fds[1], fds[1]}, pid_);
    ::close(fds[1]);
    if (rc != 0) {
      ::close(fds[0]);
      pid_ = -1;
      return finish_soon(failed(ProbeRun::LocalError, "cannot run " + exec_.command.front() + ": " + std::strerror(rc)));
    }
    boost::system::error_code ec;
    out_.assign(fds[0], ec);
    if (ec) ::close(fds[0]);
    out_open_ = !ec;
    if (out_open_) read_output();

    int pidfd = g_reap_by_polling ? -1 : static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    if (pidfd >= 0) {
      pidfd_.assign(pidfd, ec);
      if (ec) {
        ::close(pidfd);
        poll_exit();
      } else {
        pidfd_.async_wait(asio::posix::descriptor_base::wait_read, [self = self()](boost::system::error_code e) {
          if (e != asio::error::operation_aborted) self->on_exit_signalled();
        });
      }
    } else {
      poll_exit();
    }
  }

  // The fallback without pidfd: look every kPollInterval.
  void poll_exit() {
    poll_.expires_after(kPollInterval);
    poll_.async_wait([self = self()](boost::system::error_code ec) {
      if (ec) return;
      if (!self->try_reap()) self->poll_exit();
    });
  }

  void read_output() {
    out_.async_read_some(asio::buffer(buf_), [self = self()](boost::system::error_code ec, size_t n) {
      if (n > 0 && self->output_.size() < kMaxExecOutput) {
        self->output_.append(self->buf_.data(), std::min(n, kMaxExecOutput - self->output_.size()));
      }
      if (ec) {
        self->out_open_ = false;
        return self->maybe_finish();
      }
      self->read_output();
    });
  }

  void on_exit_signalled() {
    if (!try_reap()) {
      // Spurious (should not happen with a pidfd): wait again.
      pidfd_.async_wait(asio::posix::descriptor_base::wait_read, [self = self()](boost::system::error_code e) {
        if (e != asio::error::operation_aborted) self->on_exit_signalled();
      });
    }
  }

  // Reaps the child if it exited: its status first (WNOWAIT, so the pid stays ours), then
  // the rest of its process group killed, then the zombie collected. Returns false if it
  // is still running.
  bool try_reap() {
    if (reaped_) return true;
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
      if (errno == EINTR) return false;
      // ECHILD: someone else reaped it (a SIGCHLD handler set to SIG_IGN would). Nothing
      // to wait for any more.
      reaped_ = true;
    } else if (info.si_pid == 0) {
      return false;
    } else {
      if (info.si_code == CLD_EXITED) {
        exit_code_ = info.si_status;
      } else {
        signal_ = info.si_status;
      }
      // Leftovers of the check (a background sleep) go with it. The leader is not reaped
      // yet, so its pid (the group id) cannot have been reused.
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);  // a zombie: returns at once
      reaped_ = true;
    }
    boost::system::error_code ignored;
    pidfd_.close(ignored);
    poll_.cancel();
    if (!live()) return true;
    grace_.expires_after(kPipeGrace);
    grace_.async_wait([self = self()](boost::system::error_code ec) {
      if (ec) return;
      self->out_open_ = false;
      self->maybe_finish();
    });
    maybe_finish();
    return true;
  }

  void maybe_finish() {
    if (!reaped_ || out_open_ || !live()) return;
    if (killed_at_timeout_) return finish(timed_out_observation());
    std::optional<AgentWords> agent;
    std::optional<int> code = exit_code_ >= 0 ? std::optional(exit_code_) : std::nullopt;
    std::optional<int> sig = signal_ >= 0 ? std::optional(signal_) : std::nullopt;
    Verdict v = judge_exec(code, sig, output_, exec_.agent_output, agent);
    Observation o;
    o.ok = v.ok;
    o.run = ProbeRun::Answered;
    o.reason = std::move(v.reason);
    o.exit_code = code;
    o.agent = agent;
    o.body_excerpt = body_excerpt(output_);
    finish(std::move(o));
  }

  Observation timed_out_observation() {
    Observation o = failed(ProbeRun::TimedOut, "timed out after " + config::format_duration(timeout_) +
                                                   (reaped_ ? " (killed)" : " (killed, not reaped yet)"));
    o.body_excerpt = body_excerpt(output_);
    return o;
  }

  void on_deadline() override {
    killed_at_timeout_ = true;
    ::kill(-pid_, SIGKILL);
    // The exit notification follows and finishes the probe; if the child does not die
    // (stuck in the kernel), end the probe anyway a little later.
    grace_.expires_after(kKillGrace);
    grace_.async_wait([self = self()](boost::system::error_code ec) {
      if (!ec && self->live()) self->finish(self->timed_out_observation());
    });
  }

  void close() override {
    // After the completion or at cancel(): kill the group if it still runs; the pidfd wait
    // (or the poll) goes on and reaps it, keeping this object alive until then.
    if (pid_ > 0 && !reaped_) ::kill(-pid_, SIGKILL);
    boost::system::error_code ignored;
    out_.close(ignored);
    grace_.cancel();
    if (pid_ > 0 && !reaped_) try_reap();
  }

  config::ExecCheck exec_;
  ProbeTarget target_;
  config::Endpoint endpoint_;
  asio::posix::stream_descriptor pidfd_, out_;
  asio::steady_timer poll_, grace_;
  std::array<char, 4096> buf_{};
  std::string output_;
  pid_t pid_ = -1;
  int exit_code_ = -1, signal_ = -1;
  bool out_open_ = false, reaped_ = false, killed_at_timeout_ = false;
};

}  // namespace

void set_exec_reaping_by_polling(bool polling) { g_reap_by_polling = polling; }

std::shared_ptr<ProbeBase> make_exec_probe(asio::io_context& io, const config::Check& check, const ProbeTarget& target,
                                           const config::Endpoint& endpoint, ProbeDone done) {
  return std::make_shared<ExecProbe>(io, check, target, endpoint, std::move(done));
}

}  // namespace hafront::health::detail
