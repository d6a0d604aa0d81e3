#include "fence/agent_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/spawn.h"

namespace hafront::fence {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kMaxCapture = 64 * 1024;  // per stream; the rest is read and dropped
constexpr size_t kMaxSecret = 4096;
constexpr size_t kMaxReason = 240;
// After the agent exits, its pipes normally reach EOF at once (its group was killed). A
// grandchild that escaped into its own session could hold them open: do not wait for it.
constexpr std::chrono::milliseconds kPipeGrace{300};

std::string errno_text(int e) { return std::strerror(e); }

// One printable line, bounded.
std::string clean_line(std::string_view s) {
  std::string out;
  for (char ch : s) {
    if (out.size() >= kMaxReason) break;
    unsigned char c = static_cast<unsigned char>(ch);
    out += (c >= 0x20 && c < 0x7f) ? ch : ' ';
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  size_t start = out.find_first_not_of(' ');
  return start == std::string::npos ? std::string{} : out.substr(start);
}

void redact(std::string& text, const std::vector<std::string>& secrets) {
  for (const auto& s : secrets) {
    if (s.size() < 3) continue;  // too short to find without mangling unrelated text
    for (size_t pos = text.find(s); pos != std::string::npos; pos = text.find(s, pos + 3)) {
      text.replace(pos, s.size(), "***");
    }
  }
}

// The agent's own explanation: its last "ERROR: ..." line (fencing.py logs them with a
// timestamp prefix), else its last non-empty stderr line, else the last stdout line.
std::string reason_from(const std::string& err, const std::string& out) {
  std::vector<std::string_view> lines;
  auto split = [&](const std::string& text) {
    lines.clear();
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      std::string_view l(text.data() + start, end - start);
      if (!clean_line(l).empty()) lines.push_back(l);
      start = end + 1;
    }
  };
  split(err);
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    size_t p = it->find("ERROR:");
    if (p == std::string_view::npos) continue;
    std::string why = clean_line(it->substr(p + 6));
    // fencing.py ends many failures with this generic line after the real one.
    if (why == "Please use '-h' for usage") continue;
    return why;
  }
  if (!lines.empty()) return clean_line(lines.back());
  split(out);
  if (!lines.empty()) return clean_line(lines.back());
  return {};
}

bool contains_ci(const std::string& text, std::string_view needle) {
  auto it = std::search(text.begin(), text.end(), needle.begin(), needle.end(),
                        [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) ==
                                                    std::tolower(static_cast<unsigned char>(b)); });
  return it != text.end();
}

std::optional<std::string> read_secret(const std::string& path, std::string& error) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    error = "cannot read secret file " + path + ": " + errno_text(errno);
    return std::nullopt;
  }
  std::string value(kMaxSecret + 1, '\0');
  f.read(value.data(), static_cast<std::streamsize>(value.size()));
  value.resize(static_cast<size_t>(f.gcount()));
  if (value.size() > kMaxSecret) {
    error = "secret file " + path + " is larger than 4 KiB";
    return std::nullopt;
  }
  while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
  if (value.find_first_of("\r\n") != std::string::npos || value.find('\0') != std::string::npos) {
    error = "secret file " + path + " holds more than one line";
    return std::nullopt;
  }
  if (value.empty()) {
    error = "secret file " + path + " is empty";
    return std::nullopt;
  }
  return value;
}

bool single_line(const std::string& s) { return s.find_first_of("\r\n") == std::string::npos && s.find('\0') == std::string::npos; }

struct Pipe {
  int r = -1, w = -1;
  bool open() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return false;
    r = fds[0];
    w = fds[1];
    return true;
  }
  void close_all() {
    if (r >= 0) ::close(r);
    if (w >= 0) ::close(w);
    r = w = -1;
  }
};

}  // namespace

std::string AgentResult::describe() const {
  switch (exec) {
    case ExecStatus::Timeout: return "timeout after " + std::to_string(elapsed.count()) + " ms";
    case ExecStatus::NotInstalled: return reason;
    case ExecStatus::Error: return "error: " + reason;
    case ExecStatus::Done: break;
  }
  std::string a = to_string(answer);
  return reason.empty() || answer != Answer::Failed ? a : a + ": " + reason;
}

std::optional<std::string> render_stdin(const AgentRequest& request, std::vector<std::string>& secrets,
                                        std::string& error) {
  std::string text = "action=" + request.action + "\n";
  for (const auto& [k, v] : request.params) {
    if (!single_line(k) || !single_line(v)) {
      error = "parameter '" + k + "' holds a line break";
      return std::nullopt;
    }
    text += k + "=" + v + "\n";
  }
  for (const auto& [k, path] : request.secret_files) {
    auto value = read_secret(path, error);
    if (!value) return std::nullopt;
    secrets.push_back(*value);
    text += k + "=" + *value + "\n";
  }
  if (request.plug) {
    if (!single_line(*request.plug)) {
      error = "the plug holds a line break";
      return std::nullopt;
    }
    text += "port=" + *request.plug + "\n";
  }
  return text;
}

// One agent run. Owned by the handlers of its own asynchronous operations (and weakly by
// the runner), so it lives exactly as long as something can still happen to it.
class AgentRunner::Run : public Runner::Handle, public std::enable_shared_from_this<Run> {
 public:
  Run(asio::io_context& io, AgentRequest request, Done done)
      : io_(io), req_(std::move(request)), done_(std::move(done)), timer_(io), grace_(io),
        pidfd_(io), in_(io), out_(io), err_(io) {}

  ~Run() override { abandon(); }

  void start(const std::optional<std::string>& path, const std::string& folders) {
    started_ = Clock::now();
    if (!path) return fail_now(ExecStatus::NotInstalled, req_.agent + " is not installed in " + folders);
    std::string error;
    auto input = render_stdin(req_, secrets_, error);
    if (!input) return fail_now(ExecStatus::Error, error);
    input_ = std::move(*input);

    Pipe in, out, err;
    if (!in.open() || !out.open() || !err.open()) {
      int e = errno;
      in.close_all();
      out.close_all();
      err.close_all();
      return fail_now(ExecStatus::Error, "cannot create pipes: " + errno_text(e));
    }
    std::vector<std::string> env = base_environment();
    env.push_back("PYTHONWARNINGS=ignore");
    std::string p = *path;
    int rc = spawn_in_session({p}, env, SpawnFds{in.r, out.w, err.w}, pid_);
    ::close(in.r);
    ::close(out.w);
    ::close(err.w);
    if (rc != 0) {
      ::close(in.w);
      ::close(out.r);
      ::close(err.r);
      pid_ = -1;
      return fail_now(rc == ENOENT ? ExecStatus::NotInstalled : ExecStatus::Error,
                      "cannot start " + p + ": " + errno_text(rc));
    }
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    if (pidfd < 0) {
      int e = errno;
      ::close(in.w);
      ::close(out.r);
      ::close(err.r);
      kill_group();
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
      return fail_now(ExecStatus::Error, "pidfd_open: " + errno_text(e));
    }
    pidfd_.assign(pidfd);
    in_.assign(in.w);
    out_.assign(out.r);
    err_.assign(err.r);
    ::fcntl(in.w, F_SETFL, ::fcntl(in.w, F_GETFL) | O_NONBLOCK);

    auto self = shared_from_this();
    asio::async_write(in_, asio::buffer(input_), [self](boost::system::error_code, size_t) {
      // An agent that exits without reading stdin gives EPIPE here: nothing to do.
      boost::system::error_code ignored;
      self->in_.close(ignored);
      std::fill(self->input_.begin(), self->input_.end(), '\0');  // it held the secrets
    });
    read(out_, out_text_, out_open_);
    read(err_, err_text_, err_open_);
    pidfd_.async_wait(asio::posix::stream_descriptor::wait_read,
                      [self](boost::system::error_code ec) {
                        if (!ec) self->on_exit();
                      });
    timer_.expires_after(req_.timeout);
    timer_.async_wait([self](boost::system::error_code ec) {
      if (!ec && !self->exited_) {
        self->timed_out_ = true;
        self->kill_group();  // the exit notification follows and finishes the run
      }
    });
  }

  void cancel() override {
    done_ = nullptr;
    if (pid_ > 0 && !exited_) kill_group();
  }

  // Synchronous end for the runner's destructor: kill, reap, close.
  void abandon() {
    done_ = nullptr;
    if (pid_ > 0 && !reaped_) {
      kill_group();
      ::waitpid(pid_, nullptr, 0);
      reaped_ = true;
    }
    boost::system::error_code ec;
    timer_.cancel();
    grace_.cancel();
    pidfd_.close(ec);
    in_.close(ec);
    out_.close(ec);
    err_.close(ec);
  }

 private:
  void kill_group() {
    // The leader is not reaped yet whenever this runs, so its pid (the group id) cannot
    // have been reused.
    if (pid_ > 0 && !reaped_) ::kill(-pid_, SIGKILL);
  }

  void read(asio::posix::stream_descriptor& d, std::string& into, bool& open) {
    open = true;
    auto self = shared_from_this();
    d.async_read_some(asio::buffer(buf(&d)), [self, &d, &into, &open](boost::system::error_code ec, size_t n) {
      if (n > 0 && into.size() < kMaxCapture) into.append(self->buf(&d).data(), std::min(n, kMaxCapture - into.size()));
      if (ec) {
        open = false;
        self->maybe_finish();
        return;
      }
      self->read(d, into, open);
    });
  }

  std::array<char, 4096>& buf(const asio::posix::stream_descriptor* d) { return d == &out_ ? out_buf_ : err_buf_; }

  void on_exit() {
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT) == 0) {
      if (info.si_code == CLD_EXITED) {
        exit_code_ = info.si_status;
      } else {
        signal_ = info.si_status;
      }
    }
    kill_group();  // whatever the agent left behind (an ipmitool still waiting on the BMC)
    ::waitpid(pid_, nullptr, 0);
    reaped_ = true;
    exited_ = true;
    timer_.cancel();
    auto self = shared_from_this();
    grace_.expires_after(kPipeGrace);
    grace_.async_wait([self](boost::system::error_code ec) {
      if (ec) return;
      self->out_open_ = self->err_open_ = false;
      self->maybe_finish();
    });
    maybe_finish();
  }

  void maybe_finish() {
    if (!exited_ || out_open_ || err_open_ || finished_) return;
    finished_ = true;
    boost::system::error_code ec;
    grace_.cancel();
    out_.close(ec);
    err_.close(ec);
    pidfd_.close(ec);
    finish(interpret());
  }

  AgentResult interpret() {
    AgentResult r;
    redact(out_text_, secrets_);
    redact(err_text_, secrets_);
    std::string agent_reason = reason_from(err_text_, out_text_);
    r.exit_code = exit_code_;
    r.output = out_text_;
    if (timed_out_) {
      r.exec = ExecStatus::Timeout;
      r.reason = "no answer within " + std::to_string(req_.timeout.count()) + " ms; process group killed";
      return r;
    }
    if (signal_ >= 0) {
      r.exec = ExecStatus::Error;
      r.reason = "killed by signal " + std::to_string(signal_) + (agent_reason.empty() ? "" : " (" + agent_reason + ")");
      return r;
    }
    bool status = req_.action == "status";
    r.exec = ExecStatus::Done;
    if (exit_code_ == 0) {
      r.answer = status ? Answer::On : Answer::Ok;
    } else if (exit_code_ == 1) {
      r.answer = Answer::Failed;
      r.reason = agent_reason.empty() ? "the agent failed without saying why" : agent_reason;
    } else if (exit_code_ == 2 && status) {
      r.answer = Answer::Off;
    } else {
      r.exec = ExecStatus::Error;
      r.reason = "exit code " + std::to_string(exit_code_) + " is not in the fence agent API" +
                 (agent_reason.empty() ? "" : " (" + agent_reason + ")");
      return r;
    }
    // The agents print "Status: ON|OFF" next to the exit code; a contradiction means the
    // agent (or a wrapper) is broken, and a broken agent proves nothing.
    if (status) {
      bool says_on = contains_ci(out_text_, "Status: ON");
      bool says_off = contains_ci(out_text_, "Status: OFF");
      if ((r.answer == Answer::On && says_off && !says_on) || (r.answer == Answer::Off && says_on && !says_off)) {
        r.exec = ExecStatus::Error;
        r.answer = Answer::None;
        r.reason = "its output contradicts its exit code " + std::to_string(exit_code_) + ": " + clean_line(out_text_);
      }
    }
    return r;
  }

  void fail_now(ExecStatus exec, std::string reason) {
    AgentResult r;
    r.exec = exec;
    r.reason = std::move(reason);
    finished_ = true;
    // Never call back from inside run(): the caller may not be ready for it.
    asio::post(io_, [self = shared_from_this(), r = std::move(r)]() mutable { self->finish(std::move(r)); });
  }

  void finish(AgentResult r) {
    r.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_);
    auto done = std::move(done_);
    done_ = nullptr;
    if (done) done(std::move(r));
  }

  asio::io_context& io_;
  AgentRequest req_;
  Done done_;
  asio::steady_timer timer_, grace_;
  asio::posix::stream_descriptor pidfd_, in_, out_, err_;
  std::array<char, 4096> out_buf_{}, err_buf_{};
  std::string input_, out_text_, err_text_;
  std::vector<std::string> secrets_;
  pid_t pid_ = -1;
  int exit_code_ = -1, signal_ = -1;
  bool out_open_ = false, err_open_ = false;
  bool exited_ = false, reaped_ = false, timed_out_ = false, finished_ = false;
  Clock::time_point started_;
};

AgentRunner::AgentRunner(asio::io_context& io, std::vector<std::string> agent_dirs)
    : io_(io), dirs_(std::move(agent_dirs)), runs_(std::make_shared<std::vector<std::weak_ptr<Run>>>()) {}

AgentRunner::~AgentRunner() {
  for (auto& w : *runs_) {
    if (auto r = w.lock()) r->abandon();
  }
}

std::optional<std::string> AgentRunner::resolve(const std::string& agent) const {
  auto usable = [](const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
  };
  if (!agent.empty() && agent[0] == '/') return usable(agent) ? std::optional(agent) : std::nullopt;
  if (agent.empty() || agent.find('/') != std::string::npos) return std::nullopt;
  for (const auto& d : dirs_) {
    std::string p = d + "/" + agent;
    if (usable(p)) return p;
  }
  return std::nullopt;
}

size_t AgentRunner::running() const {
  return static_cast<size_t>(std::count_if(runs_->begin(), runs_->end(), [](const auto& w) { return !w.expired(); }));
}

std::shared_ptr<Runner::Handle> AgentRunner::run(const AgentRequest& request, Done done) {
  std::erase_if(*runs_, [](const auto& w) { return w.expired(); });
  auto r = std::make_shared<Run>(io_, request, std::move(done));
  runs_->push_back(r);
  std::string folders;
  for (const auto& d : dirs_) folders += (folders.empty() ? "" : ", ") + d;
  r->start(resolve(request.agent), request.agent.empty() || request.agent[0] != '/' ? folders : request.agent);
  return r;
}

AgentResult run_agent_sync(const std::vector<std::string>& agent_dirs, const AgentRequest& request) {
  asio::io_context io;
  AgentRunner runner(io, agent_dirs);
  AgentResult out;
  auto handle = runner.run(request, [&](AgentResult r) { out = std::move(r); });
  io.run();
  return out;
}

}  // namespace hafront::fence
