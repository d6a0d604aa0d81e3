#include "control/admin_server.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>

namespace hafront::control {

namespace asio = boost::asio;
using stream = asio::local::stream_protocol;

// One client connection: reads newline-terminated requests and answers each in turn.
struct AdminServer::Session : std::enable_shared_from_this<AdminServer::Session> {
  Session(AdminServer& s, stream::socket sock)
      : server(s), socket(std::move(sock)), timer(socket.get_executor()) {}

  void start() {
    arm_timer();
    read();
  }

  void arm_timer() {
    timer.expires_after(kIdleTimeout);
    timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->stop();
    });
  }

  void read() {
    asio::async_read_until(
        socket, asio::dynamic_buffer(buffer, kMaxRequestBytes + 1), '\n',
        [self = shared_from_this()](boost::system::error_code ec, size_t n) { self->on_read(ec, n); });
  }

  void on_read(boost::system::error_code ec, size_t n) {
    if (ec == asio::error::not_found) {  // the buffer filled up without a newline
      write_and_close(encode_reply(Reply::failure(
          "request is larger than " + std::to_string(kMaxRequestBytes) + " bytes")));
      return;
    }
    if (ec) {
      // EOF without a trailing newline: answer the last request anyway.
      if (ec == asio::error::eof && !buffer.empty() && buffer.size() <= kMaxRequestBytes) {
        std::string line = std::move(buffer);
        write_and_close(encode_reply(server.dispatch(line)));
        return;
      }
      stop();
      return;
    }
    std::string line = buffer.substr(0, n - 1);
    buffer.erase(0, n);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out = encode_reply(server.dispatch(line));
    asio::async_write(socket, asio::buffer(out),
                      [self = shared_from_this()](boost::system::error_code wec, size_t) {
                        if (wec) return self->stop();
                        self->arm_timer();
                        self->read();
                      });
  }

  void write_and_close(std::string reply) {
    out = std::move(reply);
    asio::async_write(socket, asio::buffer(out),
                      [self = shared_from_this()](boost::system::error_code, size_t) { self->stop(); });
  }

  void stop() {
    boost::system::error_code ignored;
    timer.cancel();
    socket.shutdown(stream::socket::shutdown_both, ignored);
    socket.close(ignored);
  }

  ~Session() {
    --*counter;
    if (auto* m = registry) m->erase(this);
  }

  AdminServer& server;
  stream::socket socket;
  asio::steady_timer timer;
  std::string buffer;
  std::string out;
  std::shared_ptr<size_t> counter;
  std::map<Session*, std::weak_ptr<Session>>* registry = nullptr;
};

AdminServer::AdminServer(asio::io_context& io, std::string socket_path)
    : io_(io), path_(std::move(socket_path)) {}

AdminServer::~AdminServer() { close(); }

std::optional<std::string> AdminServer::listen() {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path dir = fs::path(path_).parent_path();
  if (!dir.empty() && !fs::exists(dir, ec)) {
    fs::create_directories(dir, ec);
    if (ec) return "cannot create " + dir.string() + ": " + ec.message();
    ::chmod(dir.c_str(), 0700);
  }
  if (fs::exists(fs::symlink_status(path_, ec))) {
    if (!fs::is_socket(fs::symlink_status(path_, ec))) {
      return path_ + " exists and is not a socket; refusing to replace it";
    }
    // Is another daemon answering there?
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path_.copy(addr.sun_path, sizeof addr.sun_path - 1);
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::close(fd);
    if (rc == 0) return "another hafrontd is answering on " + path_;
    fs::remove(path_, ec);
  }
  try {
    acceptor_ = std::make_unique<stream::acceptor>(io_);
    acceptor_->open();
    mode_t old = ::umask(0177);  // the socket file is created 0600
    boost::system::error_code bec;
    acceptor_->bind(stream::endpoint(path_), bec);
    ::umask(old);
    if (bec) return "cannot bind " + path_ + ": " + bec.message();
    acceptor_->listen();
  } catch (const boost::system::system_error& e) {
    return "cannot listen on " + path_ + ": " + e.what();
  }
  accept();
  return std::nullopt;
}

void AdminServer::add_command(const std::string& name, Handler handler) {
  commands_[name] = std::move(handler);
}

void AdminServer::accept() {
  acceptor_->async_accept([this](boost::system::error_code ec, stream::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_ || !acceptor_->is_open()) return;
    if (!ec) start_session(std::move(socket));
    accept();
  });
}

void AdminServer::start_session(stream::socket socket) {
  if (*live_sessions_ >= kMaxSessions) {
    auto reply = std::make_shared<std::string>(
        encode_reply(Reply::failure("too many admin connections; try again")));
    auto sock = std::make_shared<stream::socket>(std::move(socket));
    asio::async_write(*sock, asio::buffer(*reply), [sock, reply](boost::system::error_code, size_t) {});
    return;
  }
  auto session = std::make_shared<Session>(*this, std::move(socket));
  ++*live_sessions_;
  session->counter = live_sessions_;
  session->registry = &sessions_;
  sessions_[session.get()] = session;
  session->start();
}

Reply AdminServer::dispatch(std::string_view line) {
  ParsedRequest parsed = parse_request(line);
  if (!parsed.request) return Reply::failure(parsed.error);
  auto it = commands_.find(parsed.request->command);
  if (it == commands_.end()) {
    std::string known;
    for (const auto& [name, h] : commands_) known += (known.empty() ? "" : ", ") + name;
    std::string shown = parsed.request->command.substr(0, 64);
    return Reply::failure("unknown command '" + shown + "' (known: " + known + ")");
  }
  try {
    return it->second(parsed.request->args);
  } catch (const std::exception& e) {
    spdlog::error("admin command '{}' failed: {}", parsed.request->command, e.what());
    return Reply::failure(std::string("internal error: ") + e.what());
  }
}

void AdminServer::close() {
  if (acceptor_) {
    boost::system::error_code ec;
    acceptor_->close(ec);
    acceptor_.reset();
    std::error_code fec;
    std::filesystem::remove(path_, fec);
  }
  auto sessions = sessions_;
  for (auto& [ptr, weak] : sessions) {
    if (auto s = weak.lock()) {
      s->registry = nullptr;
      s->stop();
    }
  }
  sessions_.clear();
}

}  // namespace hafront::control
