#include "proxy/socket_ops.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hafront::proxy {

SocketAddress to_socket_address(const config::Endpoint& endpoint) noexcept {
  SocketAddress out;
  if (endpoint.address.is_v6()) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(endpoint.port);
    std::memcpy(&sin6->sin6_addr, endpoint.address.bytes.data(), 16);
    out.length = sizeof(sockaddr_in6);
  } else {
    auto* sin = reinterpret_cast<sockaddr_in*>(&out.storage);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(endpoint.port);
    std::memcpy(&sin->sin_addr, endpoint.address.bytes.data(), 4);
    out.length = sizeof(sockaddr_in);
  }
  return out;
}

std::optional<config::Endpoint> to_endpoint(const sockaddr_storage& storage) noexcept {
  config::Endpoint e;
  if (storage.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&storage);
    e.address.family = config::Address::Family::V4;
    std::memcpy(e.address.bytes.data(), &sin->sin_addr, 4);
    e.port = ntohs(sin->sin_port);
    return e;
  }
  if (storage.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    e.port = ntohs(sin6->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
      e.address.family = config::Address::Family::V4;
      std::memcpy(e.address.bytes.data(), reinterpret_cast<const uint8_t*>(&sin6->sin6_addr) + 12, 4);
    } else {
      e.address.family = config::Address::Family::V6;
      std::memcpy(e.address.bytes.data(), &sin6->sin6_addr, 16);
    }
    return e;
  }
  return std::nullopt;
}

namespace {
void set_flag(int fd, int level, int name) noexcept {
  int one = 1;
  setsockopt(fd, level, name, &one, sizeof one);
}
}  // namespace

int open_listener(const config::Endpoint& endpoint, bool nonblocking, int backlog, std::string& error) noexcept {
  SocketAddress addr = to_socket_address(endpoint);
  int fd = ::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) {
    error = "socket for " + endpoint.str() + ": " + std::strerror(errno);
    return -1;
  }
  set_flag(fd, SOL_SOCKET, SO_REUSEADDR);
  set_flag(fd, SOL_SOCKET, SO_REUSEPORT);
  if (addr.family() == AF_INET6) {
    set_flag(fd, IPPROTO_IPV6, IPV6_V6ONLY);
    set_flag(fd, IPPROTO_IPV6, IPV6_FREEBIND);
  } else {
    set_flag(fd, IPPROTO_IP, IP_FREEBIND);
  }
  if (::bind(fd, addr.get(), addr.length) != 0) {
    error = "bind " + endpoint.str() + ": " + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  if (::listen(fd, backlog) != 0) {
    error = "listen " + endpoint.str() + ": " + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

int open_server_socket(int family, bool nonblocking) noexcept {
  int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) return -errno;
  tune_connection(fd);
  return fd;
}

void tune_connection(int fd) noexcept {
  set_flag(fd, IPPROTO_TCP, TCP_NODELAY);
  set_flag(fd, SOL_SOCKET, SO_KEEPALIVE);
}

void abort_on_close(int fd) noexcept {
  linger l{};
  l.l_onoff = 1;
  l.l_linger = 0;
  (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

std::optional<config::Endpoint> peer_endpoint(int fd) noexcept {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return std::nullopt;
  return to_endpoint(ss);
}

std::optional<config::Endpoint> local_endpoint(int fd) noexcept {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return std::nullopt;
  return to_endpoint(ss);
}

uint64_t raise_file_limit(uint64_t wanted) noexcept {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= wanted) return rl.rlim_cur;
  rlim_t target = rl.rlim_max == RLIM_INFINITY ? wanted : std::min<rlim_t>(rl.rlim_max, wanted);
  if (target > rl.rlim_cur) {
    rl.rlim_cur = target;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur;
}

}  // namespace hafront::proxy
