#include "control/admin_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hafront::control {
namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::string errno_text() { return std::strerror(errno); }

}  // namespace

Reply call(const std::string& socket_path, std::string_view command, const boost::json::object& args,
           std::chrono::milliseconds timeout) {
  sockaddr_un addr{};
  if (socket_path.size() >= sizeof addr.sun_path) return Reply::failure("admin socket path is too long");
  addr.sun_family = AF_UNIX;
  socket_path.copy(addr.sun_path, sizeof addr.sun_path - 1);

  Fd s{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (s.fd < 0) return Reply::failure("cannot create a socket: " + errno_text());
  if (::connect(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return Reply::failure("cannot reach hafrontd at " + socket_path + ": " + errno_text() +
                          " (is the daemon running? is this the right socket?)");
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto wait = [&](short events) -> bool {
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{s.fd, events, 0};
      int rc = ::poll(&p, 1, static_cast<int>(left.count()));
      if (rc > 0) return true;
      if (rc < 0 && errno != EINTR) return false;
    }
  };

  std::string request = encode_request(command, args);
  size_t sent = 0;
  while (sent < request.size()) {
    if (!wait(POLLOUT)) return Reply::failure("timed out sending the request to hafrontd");
    ssize_t n = ::send(s.fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return Reply::failure("cannot send the request: " + errno_text());
    }
    sent += static_cast<size_t>(n);
  }

  std::string reply;
  char buf[65536];
  for (;;) {
    size_t nl = reply.find('\n');
    if (nl != std::string::npos) return decode_reply(std::string_view(reply).substr(0, nl));
    if (reply.size() > kMaxResponseBytes) return Reply::failure("the daemon's reply is too large");
    if (!wait(POLLIN)) return Reply::failure("timed out waiting for hafrontd's reply");
    ssize_t n = ::recv(s.fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return Reply::failure("cannot read the reply: " + errno_text());
    }
    if (n == 0) {
      if (!reply.empty()) return decode_reply(reply);
      return Reply::failure("hafrontd closed the connection without replying");
    }
    reply.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace hafront::control
