// The mysql check through MariaDB Connector/C's non-blocking API: every _start/_cont call
// returns at once with the events it waits for (MYSQL_WAIT_READ/WRITE/EXCEPT/TIMEOUT), and
// an Asio wait on the connector's socket (a stream_descriptor that never owns the fd)
// resumes it. Two SHOW statements, which Galera answers even on a node that is not ready
// (SELECTs that read tables get ERROR 1047 there) and which return no rows, not an error,
// for names a server without wsrep lacks:
//   SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_state', ...)
//   SHOW GLOBAL VARIABLES WHERE Variable_name IN ('read_only', 'wsrep_desync')
// Rows are read unbuffered, at most kMaxRows, with packets limited to kMaxPacket: a hostile
// server cannot make us buffer much.
#include <mysql.h>
#include <errmsg.h>
#include <sys/socket.h>

#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <utility>
#include <vector>

#include "health/probe_impl.h"
#include "health/probe_verdicts.h"

namespace hafront::health::detail {

namespace {

constexpr size_t kMaxSecret = 4096;
constexpr int kMaxRows = 64;
constexpr unsigned long kMaxPacket = 256 * 1024;

constexpr const char* kStatusQuery =
    "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_state', 'wsrep_local_state_comment', "
    "'wsrep_cluster_status', 'wsrep_ready', 'wsrep_last_committed', 'wsrep_cluster_size')";
constexpr const char* kVariablesQuery = "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('read_only', 'wsrep_desync')";

// The password from its file, read now (so a rotated password needs no reload): one line,
// a trailing line break removed. Errors name the file, never its content.
std::optional<std::string> read_password(const std::string& path, std::string& error) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    error = "cannot read password file " + path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::string value(kMaxSecret + 1, '\0');
  f.read(value.data(), static_cast<std::streamsize>(value.size()));
  value.resize(static_cast<size_t>(f.gcount()));
  if (f.bad()) {
    error = "cannot read password file " + path;
    return std::nullopt;
  }
  if (value.size() > kMaxSecret) {
    error = "password file " + path + " is larger than 4 KiB";
    return std::nullopt;
  }
  if (!value.empty() && value.back() == '\n') value.pop_back();
  if (!value.empty() && value.back() == '\r') value.pop_back();
  if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
    error = "password file " + path + " holds more than one line";
    return std::nullopt;
  }
  return value;
}

void wipe(std::string& s) {
  std::fill(s.begin(), s.end(), '\0');
  s.clear();
}

class MysqlProbe final : public ProbeBase {
 public:
  MysqlProbe(asio::io_context& io, const config::Check& check, const config::Endpoint& endpoint, ProbeDone done)
      : ProbeBase(io, check, std::move(done)),
        mysql_(check.mysql),
        host_(endpoint.address.str()),
        port_(endpoint.port),
        socket_(io),
        lib_timer_(io) {}

  ~MysqlProbe() override {
    // Normally close() ran; this covers an io_context destroyed with our handlers pending.
    abandon();
    wipe(password_);
  }

 private:
  using Cont = std::function<int(int)>;  // resumes the pending call with the events seen
  using Next = std::function<void()>;    // what follows once it returned

  std::shared_ptr<MysqlProbe> self() { return std::static_pointer_cast<MysqlProbe>(shared_from_this()); }

  void begin() override {
    if (mysql_.password) {
      std::string error;
      auto pw = read_password(mysql_.password->path, error);
      if (!pw) return finish_soon(failed(ProbeRun::LocalError, error));
      password_ = std::move(*pw);
    }
    m_ = mysql_init(nullptr);
    if (!m_) return finish_soon(failed(ProbeRun::LocalError, "mysql_init failed (out of memory)"));
    mysql_options(m_, MYSQL_OPT_NONBLOCK, nullptr);
    mysql_options(m_, MYSQL_OPT_MAX_ALLOWED_PACKET, &kMaxPacket);
    unsigned int protocol = MYSQL_PROTOCOL_TCP;
    mysql_options(m_, MYSQL_OPT_PROTOCOL, &protocol);
    unsigned int no_local_infile = 0;
    mysql_options(m_, MYSQL_OPT_LOCAL_INFILE, &no_local_infile);
    // The first _start call runs connector code that may fail at once; start it from the
    // loop so that even then the completion never runs inside start_probe().
    asio::post(io_, [self = self()] {
      if (self->live()) self->connect();
    });
  }

  // ---- the steps ----

  void connect() {
    phase_ = "connecting";
    int st = mysql_real_connect_start(&connected_, m_, host_.c_str(), mysql_.user.c_str(),
                                      mysql_.password ? password_.c_str() : nullptr, nullptr, port_, nullptr, 0);
    await(
        st, [this](int ev) { return mysql_real_connect_cont(&connected_, m_, ev); },
        [this] {
          wipe(password_);  // the connector keeps its own copy for reconnects; ours is not needed
          if (!connected_) return fail_with(connect_failure_text());
          query(0);
        });
  }

  void query(int i) {
    phase_ = "waiting for the status query";
    const char* q = i == 0 ? kStatusQuery : kVariablesQuery;
    int st = mysql_real_query_start(&query_rc_, m_, q, std::strlen(q));
    await(
        st, [this](int ev) { return mysql_real_query_cont(&query_rc_, m_, ev); },
        [this, i] {
          if (query_rc_ != 0) return fail_with("query failed: " + error_text());
          result_ = mysql_use_result(m_);
          if (!result_) return fail_with("query returned no result: " + error_text());
          if (mysql_num_fields(result_) < 2) return fail_with("query returned fewer than 2 columns");
          fetch(i);
        });
  }

  void fetch(int i) {
    int st = mysql_fetch_row_start(&row_, result_);
    await(
        st, [this](int ev) { return mysql_fetch_row_cont(&row_, result_, ev); },
        [this, i] {
          if (row_) {
            if (++rows_seen_ > kMaxRows) return fail_with("query returned more than " + std::to_string(kMaxRows) + " rows");
            unsigned long* len = mysql_fetch_lengths(result_);
            if (row_[0] && row_[1] && len) {
              rows_.emplace_back(std::string(row_[0], std::min<unsigned long>(len[0], 128)),
                                 std::string(row_[1], std::min<unsigned long>(len[1], 256)));
            }
            return fetch(i);
          }
          if (mysql_errno(m_) != 0) return fail_with("reading the status failed: " + error_text());
          // Every row was read: freeing an unbuffered result does no I/O now.
          mysql_free_result(result_);
          result_ = nullptr;
          if (i == 0) return query(1);
          judge();
        });
  }

  void judge() {
    idle_ = true;  // between commands: close() may say goodbye with COM_QUIT
    GaleraView view = galera_view(rows_);
    Verdict v = judge_galera(view, mysql_.require);
    Observation o;
    o.ok = v.ok;
    o.run = ProbeRun::Answered;
    o.reason = std::move(v.reason);
    o.galera = view;
    finish(std::move(o));
  }

  // ---- driving the connector from Asio ----

  // `st` is what the last _start/_cont call returned: 0 = it completed (run next now),
  // else the events it waits for.
  void await(int st, Cont cont, Next next) {
    if (st == 0) return next();
    cont_ = std::move(cont);
    next_ = std::move(next);
    arm(st);
  }

  void arm(int st) {
    int fd = mysql_get_socket(m_);
    if (fd != fd_) {
      release_socket();
      if (fd >= 0) {
        boost::system::error_code ec;
        socket_.assign(fd, ec);
        if (ec) return fail_with("cannot watch the connection: " + ec.message(), ProbeRun::LocalError);
        fd_ = fd;
      }
    }
    uint64_t gen = ++generation_;
    auto wake = [self = self(), gen](int event) {
      return [self, gen, event](boost::system::error_code ec) {
        if (ec == asio::error::operation_aborted || !self->live() || gen != self->generation_) return;
        self->resume(event);
      };
    };
    if (fd_ >= 0) {
      if (st & MYSQL_WAIT_READ) socket_.async_wait(asio::posix::descriptor_base::wait_read, wake(MYSQL_WAIT_READ));
      if (st & MYSQL_WAIT_WRITE) socket_.async_wait(asio::posix::descriptor_base::wait_write, wake(MYSQL_WAIT_WRITE));
      if (st & MYSQL_WAIT_EXCEPT) socket_.async_wait(asio::posix::descriptor_base::wait_error, wake(MYSQL_WAIT_EXCEPT));
    }
    if (st & MYSQL_WAIT_TIMEOUT) {
      // The connector's own time-out (none is set here, but honour it if it asks).
      lib_timer_.expires_after(std::chrono::milliseconds(mysql_get_timeout_value_ms(m_)));
      lib_timer_.async_wait(wake(MYSQL_WAIT_TIMEOUT));
    }
  }

  void resume(int event) {
    ++generation_;  // the other waits of this round are stale now
    boost::system::error_code ignored;
    socket_.cancel(ignored);
    lib_timer_.cancel();
    int st = cont_(event);
    if (st != 0) return arm(st);
    cont_ = nullptr;
    auto next = std::move(next_);
    next_ = nullptr;
    next();
  }

  // ---- ending ----

  std::string error_text() {
    std::string e = mysql_error(m_);
    // MariaDB's messages never carry the password; make sure of it.
    if (password_.size() >= 3) {
      for (size_t p = e.find(password_); p != std::string::npos; p = e.find(password_, p + 3)) e.replace(p, password_.size(), "***");
    }
    if (e.size() > 240) e.resize(240);
    return e;
  }

  // "connect: Access denied for user 'hafront'@'127.0.0.1' (using password: YES)";
  // a refused TCP connection as "connect refused", like the other checks.
  std::string connect_failure_text() {
    unsigned int code = mysql_errno(m_);
    std::string e = error_text();
    if (code == CR_CONN_HOST_ERROR || code == CR_CONNECTION_ERROR) {
      size_t open = e.rfind('(');
      if (open != std::string::npos && e.back() == ')') {
        int sys = std::atoi(e.c_str() + open + 1);
        if (sys > 0) return connect_failure(boost::system::error_code(sys, boost::system::system_category()));
      }
    }
    return "connect: " + e;
  }

  void fail_with(std::string reason, std::optional<ProbeRun> run = std::nullopt) {
    // Errors the server sent (access denied, unknown command) are answers; the client's own
    // (CR_*, 2000 and up: lost connection, cannot connect) mean it was not reachable.
    unsigned int code = m_ ? mysql_errno(m_) : 0;
    ProbeRun r = run ? *run : (code > 0 && code < CR_MIN_ERROR ? ProbeRun::Answered : ProbeRun::Unreachable);
    finish(failed(r, std::move(reason)));
  }

  void release_socket() {
    if (fd_ < 0) return;
    boost::system::error_code ignored;
    socket_.cancel(ignored);
    (void)socket_.release();  // the connector owns the fd and closes it
    fd_ = -1;
  }

  // Frees the connection without waiting on the peer: mariadb_cancel() shuts the socket
  // down, so the COM_QUIT that mysql_close() sends fails at once instead of blocking on a
  // hung server (or a connect still in SYN_SENT). Allowed while a non-blocking call is
  // suspended: mysql_close() only frees its context.
  void abandon() {
    release_socket();
    lib_timer_.cancel();
    if (!m_) return;
    mariadb_cancel(m_);
    if (result_) mysql_free_result(result_);  // unbuffered: its rest would be read, and fails now
    result_ = nullptr;
    mysql_close(m_);
    m_ = nullptr;
  }

  void close() override {
    if (m_ && idle_) {
      // Between commands: say goodbye (COM_QUIT, one small write) so the server does not
      // count an aborted connection; if even that would wait, cut it short.
      release_socket();
      int st = mysql_close_start(m_);
      if (st != 0) {
        mariadb_cancel(m_);
        for (int i = 0; st != 0 && i < 16; ++i) st = mysql_close_cont(m_, st);
      }
      if (st == 0) {
        m_ = nullptr;
        return;
      }
    }
    abandon();
  }

  void on_deadline() override { finish(timed_out(phase_)); }

  config::MysqlCheck mysql_;
  std::string host_;
  uint16_t port_;
  std::string password_;
  MYSQL* m_ = nullptr;
  MYSQL* connected_ = nullptr;
  int query_rc_ = 0;
  MYSQL_RES* result_ = nullptr;
  MYSQL_ROW row_ = nullptr;
  int rows_seen_ = 0;
  std::vector<std::pair<std::string, std::string>> rows_;
  asio::posix::stream_descriptor socket_;
  int fd_ = -1;
  asio::steady_timer lib_timer_;
  uint64_t generation_ = 0;
  Cont cont_;
  Next next_;
  const char* phase_ = "connecting";
  bool idle_ = false;
};

}  // namespace

std::shared_ptr<ProbeBase> make_mysql_probe(asio::io_context& io, const config::Check& check,
                                            const config::Endpoint& endpoint, ProbeDone done) {
  return std::make_shared<MysqlProbe>(io, check, endpoint, std::move(done));
}

}  // namespace hafront::health::detail
