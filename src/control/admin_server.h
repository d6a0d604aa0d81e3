// The admin socket of hafrontd: a unix stream socket (mode 0600) on the control loop.
//
// Commands are registered by name; each request is answered by its handler on the control
// thread, so handlers can read daemon state without locks. Bounded: at most kMaxSessions
// connections, each request at most kMaxRequestBytes, and a connection idle for
// kIdleTimeout is closed. A handler that throws gets an error reply; the daemon stays up.
#pragma once

#include <boost/asio.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "control/protocol.h"

namespace hafront::control {

class AdminServer {
 public:
  using Handler = std::function<Reply(const boost::json::object& args)>;

  static constexpr size_t kMaxSessions = 32;
  static constexpr std::chrono::seconds kIdleTimeout{10};

  AdminServer(boost::asio::io_context& io, std::string socket_path);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Creates the socket's folder (0700) if missing, refuses to start if another daemon
  // answers on the path, replaces a stale socket file, binds with mode 0600 and starts
  // accepting. Returns an error text on failure.
  std::optional<std::string> listen();

  void add_command(const std::string& name, Handler handler);

  // Stops accepting, closes every session and removes the socket file.
  void close();

  const std::string& path() const { return path_; }

 private:
  struct Session;
  void accept();
  void start_session(boost::asio::local::stream_protocol::socket socket);
  Reply dispatch(std::string_view line);

  boost::asio::io_context& io_;
  std::string path_;
  std::unique_ptr<boost::asio::local::stream_protocol::acceptor> acceptor_;
  std::map<std::string, Handler> commands_;
  std::shared_ptr<size_t> live_sessions_ = std::make_shared<size_t>(0);
  std::map<Session*, std::weak_ptr<Session>> sessions_;
};

}  // namespace hafront::control
