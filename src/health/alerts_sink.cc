#include "health/alerts_sink.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <cstring>

#include "common/spawn.h"

namespace hafront::health {
namespace asio = boost::asio;
namespace http = boost::beast::http;

namespace {

constexpr size_t kMaxRunning = 4;
constexpr size_t kMaxQueued = 100;
constexpr size_t kMaxAnswer = 64 * 1024;

// What both sinks share: counters, the bounded queue, and the running sends (weakly), so
// stop() can end them.
struct SinkCore {
  SinkStatus status;
  std::deque<std::string> queue;
  size_t running = 0;
  bool stopped = false;
};

// ---- webhook ---------------------------------------------------------------------------

class Post : public std::enable_shared_from_this<Post> {
 public:
  using Done = std::function<void(bool ok, const std::string& error)>;
  Post(asio::io_context& io, const config::WebhookSink& cfg, std::string body, Done done)
      : cfg_(cfg), resolver_(io), socket_(io), timer_(io), done_(std::move(done)) {
    req_.method(http::verb::post);
    req_.target(cfg_.target);
    req_.version(11);
    bool v6 = cfg_.host.find(':') != std::string::npos;
    req_.set(http::field::host, (v6 ? "[" + cfg_.host + "]" : cfg_.host) + ":" + std::to_string(cfg_.port));
    req_.set(http::field::user_agent, "hafront/" HAFRONT_VERSION);
    req_.set(http::field::content_type, "application/json");
    req_.set(http::field::connection, "close");
    req_.body() = std::move(body);
    req_.prepare_payload();
    parser_.body_limit(kMaxAnswer);
  }

  void start() {
    auto self = shared_from_this();
    timer_.expires_after(cfg_.timeout);
    timer_.async_wait([self](boost::system::error_code ec) {
      if (ec) return;
      self->finish(false, "no answer within " + std::to_string(self->cfg_.timeout.count()) + "ms");
    });
    resolver_.async_resolve(cfg_.host, std::to_string(cfg_.port),
                            [self](boost::system::error_code ec, asio::ip::tcp::resolver::results_type results) {
                              if (ec) return self->finish(false, "cannot resolve " + self->cfg_.host + ": " + ec.message());
                              asio::async_connect(self->socket_, results,
                                                  [self](boost::system::error_code ec2, const asio::ip::tcp::endpoint&) {
                                                    if (ec2) return self->finish(false, "connect: " + ec2.message());
                                                    self->write();
                                                  });
                            });
  }

  void cancel() { finish(false, "abandoned"); }

 private:
  void write() {
    auto self = shared_from_this();
    http::async_write(socket_, req_, [self](boost::system::error_code ec, size_t) {
      if (ec) return self->finish(false, "send: " + ec.message());
      http::async_read(self->socket_, self->buffer_, self->parser_, [self](boost::system::error_code ec2, size_t) {
        if (ec2) return self->finish(false, "answer: " + ec2.message());
        unsigned status = self->parser_.get().result_int();
        if (status >= 200 && status < 300) return self->finish(true, "");
        self->finish(false, "HTTP " + std::to_string(status));
      });
    });
  }

  void finish(bool ok, const std::string& error) {
    if (finished_) return;
    finished_ = true;
    boost::system::error_code ignored;
    timer_.cancel();
    resolver_.cancel();
    socket_.close(ignored);
    if (done_) {
      auto d = std::move(done_);
      d(ok, error);
    }
  }

  config::WebhookSink cfg_;
  asio::ip::tcp::resolver resolver_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  http::request<http::string_body> req_;
  boost::beast::flat_buffer buffer_;
  http::response_parser<http::string_body> parser_;
  Done done_;
  bool finished_ = false;
};

// ---- exec ------------------------------------------------------------------------------

class Spawned : public std::enable_shared_from_this<Spawned> {
 public:
  using Done = std::function<void(bool ok, const std::string& error)>;
  Spawned(asio::io_context& io, const config::ExecSink& cfg, std::string body, Done done)
      : cfg_(cfg), body_(std::move(body)), in_(io), pidfd_(io), timer_(io), done_(std::move(done)) {}
  ~Spawned() { abandon(); }

  void start() {
    // stdin is a socket, not a pipe: a command that exits without reading it makes our send
    // fail with EPIPE, never raise SIGPIPE (Asio sends with MSG_NOSIGNAL), whatever the
    // process's signal dispositions are.
    if (cfg_.command.empty()) return finish(false, "no command to run");
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
      return finish(false, std::string("socketpair: ") + std::strerror(errno));
    int rc = spawn_in_session(cfg_.command, base_environment(), SpawnFds{fds[0], -1, -1}, pid_);
    ::close(fds[0]);
    if (rc != 0) {
      ::close(fds[1]);
      pid_ = -1;
      return finish(false, "cannot start " + cfg_.command.front() + ": " + std::strerror(rc));
    }
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    if (pidfd < 0) {
      int e = errno;
      ::close(fds[1]);
      abandon();
      return finish(false, std::string("pidfd_open: ") + std::strerror(e));
    }
    pidfd_.assign(pidfd);
    boost::system::error_code assign_error;
    in_.assign(asio::local::stream_protocol(), fds[1], assign_error);
    if (assign_error) ::close(fds[1]);
    auto self = shared_from_this();
    asio::async_write(in_, asio::buffer(body_), [self](boost::system::error_code, size_t) {
      // A command that exits without reading its stdin gives EPIPE here: nothing to do.
      boost::system::error_code ignored;
      self->in_.close(ignored);  // end of its input
    });
    pidfd_.async_wait(asio::posix::stream_descriptor::wait_read, [self](boost::system::error_code ec) {
      if (!ec) self->on_exit();
    });
    timer_.expires_after(cfg_.timeout);
    timer_.async_wait([self](boost::system::error_code ec) {
      if (ec || self->reaped_) return;
      self->timed_out_ = true;
      if (self->pid_ > 0) ::kill(-self->pid_, SIGKILL);  // the exit notification finishes it
    });
  }

  void cancel() {
    done_ = nullptr;
    abandon();
  }

 private:
  void on_exit() {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) return;
    reaped_ = true;
    boost::system::error_code ignored;
    timer_.cancel();
    pidfd_.close(ignored);
    in_.close(ignored);
    if (timed_out_) return finish(false, "killed after its " + std::to_string(cfg_.timeout.count()) + "ms time-out");
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return finish(true, "");
    finish(false, WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                    : "killed by signal " + std::to_string(WTERMSIG(status)));
  }

  // Synchronous end: kill, reap, close.
  void abandon() {
    if (pid_ > 0 && !reaped_) {
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      reaped_ = true;
    }
    boost::system::error_code ignored;
    timer_.cancel();
    pidfd_.close(ignored);
    in_.close(ignored);
  }

  void finish(bool ok, const std::string& error) {
    if (done_) {
      auto d = std::move(done_);
      d(ok, error);
    }
  }

  config::ExecSink cfg_;
  std::string body_;
  asio::local::stream_protocol::socket in_;
  asio::posix::stream_descriptor pidfd_;
  asio::steady_timer timer_;
  Done done_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  bool timed_out_ = false;
};

// ---- both ------------------------------------------------------------------------------

// A sink runs at most kMaxRunning deliveries (Job: Post or Spawned) at once and queues the
// rest, dropping the oldest beyond kMaxQueued.
template <typename Job, typename Config>
class QueuedSink : public AlertSink {
 public:
  QueuedSink(asio::io_context& io, const Config& cfg, std::string name, std::string failed)
      : io_(io), cfg_(cfg), failed_(std::move(failed)), core_(std::make_shared<SinkCore>()) {
    core_->status.name = std::move(name);
  }
  ~QueuedSink() override { stop(); }

  void send(const std::string& body) override {
    if (core_->stopped) return;
    if (core_->running >= kMaxRunning) {
      if (core_->queue.size() >= kMaxQueued) {
        core_->queue.pop_front();
        ++core_->status.dropped;
      }
      core_->queue.push_back(body);
      return;
    }
    start(body);
  }

  SinkStatus status() const override { return core_->status; }

  void stop() override {
    core_->stopped = true;
    core_->queue.clear();
    for (auto& w : jobs_) {
      if (auto j = w.lock()) j->cancel();
    }
    jobs_.clear();
  }

 private:
  void start(const std::string& body) {
    ++core_->running;
    std::weak_ptr<SinkCore> weak = core_;
    auto job = std::make_shared<Job>(io_, cfg_, body, [this, weak](bool ok, const std::string& error) {
      auto core = weak.lock();
      if (!core) return;
      --core->running;
      if (ok) {
        ++core->status.sent;
      } else {
        ++core->status.failed;
        core->status.last_error = error;
        if (!core->stopped) spdlog::warn("alert {}: {}: {}", core->status.name, failed_, error);
      }
      if (core->stopped || core->queue.empty()) return;
      std::string next = std::move(core->queue.front());
      core->queue.pop_front();
      // Not from inside the job's completion: the next one starts on the next loop turn.
      // `this` lives while the core does (the sink owns it and clears it on stop()).
      asio::post(io_, [this, weak, next = std::move(next)] {
        if (auto c = weak.lock(); c && !c->stopped) start(next);
      });
    });
    std::erase_if(jobs_, [](const std::weak_ptr<Job>& w) { return w.expired(); });
    jobs_.push_back(job);
    job->start();
  }

  asio::io_context& io_;
  Config cfg_;
  std::string failed_;
  std::shared_ptr<SinkCore> core_;
  std::vector<std::weak_ptr<Job>> jobs_;
};

int64_t system_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::unique_ptr<AlertSink> make_webhook_sink(asio::io_context& io, const config::WebhookSink& config) {
  return std::make_unique<QueuedSink<Post, config::WebhookSink>>(io, config, "webhook " + config.url, "not delivered");
}

std::unique_ptr<AlertSink> make_exec_sink(asio::io_context& io, const config::ExecSink& config) {
  return std::make_unique<QueuedSink<Spawned, config::ExecSink>>(
      io, config, "exec " + (config.command.empty() ? std::string("?") : config.command.front()), "failed");
}

// ---- manager ---------------------------------------------------------------------------

AlertManager::AlertManager(asio::io_context& io, std::string node, std::string cluster, Options options)
    : io_(io), node_(std::move(node)), cluster_(std::move(cluster)), options_(std::move(options)), timer_(io) {
  if (!options_.now_ms) options_.now_ms = system_ms;
}

AlertManager::AlertManager(asio::io_context& io, std::string node, std::string cluster)
    : AlertManager(io, std::move(node), std::move(cluster), Options{}) {}

AlertManager::~AlertManager() {
  *alive_ = false;
  stop();
}

void AlertManager::configure(const config::AlertOptions& options) {
  engine_.set_group_wait(options.group_wait);
  bool same_sinks = options.webhook == config_.webhook && options.exec == config_.exec && !sinks_.empty();
  if (!same_sinks) {
    for (auto& s : sinks_) s.sink->stop();
    sinks_.clear();
    if (options.webhook) sinks_.push_back({make_webhook_sink(io_, *options.webhook), RateLimiter(options.max_per_minute)});
    if (options.exec) sinks_.push_back({make_exec_sink(io_, *options.exec), RateLimiter(options.max_per_minute)});
  }
  for (auto& s : sinks_) s.limiter.set_limit(options.max_per_minute);
  config_ = options;
  arm();
}

void AlertManager::add_sink(std::unique_ptr<AlertSink> sink) {
  sinks_.push_back({std::move(sink), RateLimiter(config_.max_per_minute)});
}

void AlertManager::update(const Problems& problems) {
  if (stopped_) return;
  engine_.update(problems, options_.now_ms());
  arm();
}

void AlertManager::event(const std::string& message, AlertSeverity severity) {
  if (stopped_) return;
  engine_.event(message, severity, options_.now_ms());
  arm();
}

void AlertManager::deliver(Sink& s, const Alert& a, int64_t now) {
  if (!s.limiter.admit(now)) {
    ++s.rate_limited;
    return;
  }
  s.sink->send(boost::json::serialize(to_json(a, node_, cluster_)));
}

std::optional<int64_t> AlertManager::pump() {
  if (stopped_) return std::nullopt;
  const int64_t now = options_.now_ms();
  for (const Alert& a : engine_.take_due(now)) {
    if (on_alert_) on_alert_(a);
    for (auto& s : sinks_) deliver(s, a, now);
  }
  std::optional<int64_t> next = engine_.next_due();
  for (auto& s : sinks_) {
    if (auto n = s.limiter.take_summary(now)) {
      Alert a;
      a.id = "rate-limit";
      a.severity = AlertSeverity::Warning;
      a.summary = std::to_string(*n) + " more alert(s) were not sent to this sink: at most " +
                  std::to_string(config_.max_per_minute) + " per minute (hafrontctl status shows the current state)";
      a.time_ms = a.since_ms = now;
      s.sink->send(boost::json::serialize(to_json(a, node_, cluster_)));
    }
    if (auto due = s.limiter.summary_due(); due && (!next || *due < *next)) next = due;
  }
  return next;
}

void AlertManager::arm() {
  if (!options_.timers || stopped_) return;
  // Sends at once what is due now; the timer waits for the rest.
  auto next = pump();
  timer_.cancel();
  if (!next) return;
  int64_t wait = std::max<int64_t>(*next - options_.now_ms(), 1);
  timer_.expires_after(std::chrono::milliseconds(wait));
  timer_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](boost::system::error_code ec) {
    if (ec || alive.expired() || stopped_) return;
    arm();
  });
}

std::vector<SinkStatus> AlertManager::sinks() const {
  std::vector<SinkStatus> out;
  for (const auto& s : sinks_) {
    SinkStatus st = s.sink->status();
    st.rate_limited = s.rate_limited;
    out.push_back(std::move(st));
  }
  return out;
}

void AlertManager::stop() {
  stopped_ = true;
  timer_.cancel();
  for (auto& s : sinks_) s.sink->stop();
}

}  // namespace hafront::health
