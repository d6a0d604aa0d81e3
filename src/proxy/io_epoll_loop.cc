// The epoll back-end: the same completion interface on top of readiness.
//
// Each socket is registered once, edge-triggered, for reading and writing. An operation is
// tried at once when it is submitted; if the socket is not ready it waits for the next edge.
// Because it was tried after the last edge was consumed, no edge is missed. Whatever
// finishes (at once or on an edge) is queued and handed out by the next wait(), never from
// inside the call that submitted it.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "proxy/io_backend.h"

namespace hafront::proxy {
namespace {

constexpr int kMaxEvents = 256;

class EpollLoop final : public IoLoop {
 public:
  explicit EpollLoop(const IoOptions& options) : options_(options), pool_(options.buffer_size, 0) {}

  ~EpollLoop() override {
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }

  bool init(std::string& error) {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (epoll_fd_ < 0 || wake_fd_ < 0) {
      error = std::string("epoll/eventfd: ") + std::strerror(errno);
      return false;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = wake_fd_;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) {
      error = std::string("epoll_ctl: ") + std::strerror(errno);
      return false;
    }
    return true;
  }

  IoBackend kind() const noexcept override { return IoBackend::Epoll; }
  std::string describe() const override { return "epoll, receive buffers per connection"; }
  bool wants_nonblocking() const noexcept override { return true; }

  void accept(int listen_fd, uint64_t token) override {
    FdState& s = state(listen_fd);
    s.accept = Pending{true, token};
    try_accept(listen_fd, s);
  }

  void recv(int fd, uint64_t token) override {
    FdState& s = state(fd);
    s.recv = Pending{true, token};
    try_recv(fd, s);
  }

  void send(int fd, const uint8_t* data, uint32_t len, uint64_t token) override {
    FdState& s = state(fd);
    s.send = Pending{true, token};
    s.send_data = data;
    s.send_len = len;
    try_send(fd, s);
  }

  void connect(int fd, const sockaddr* addr, socklen_t len, uint64_t token) override {
    // Registered only after connect() has started: a socket that never connected reports
    // EPOLLHUP, which would pass for a finished connect.
    int ret = ::connect(fd, addr, len);
    int err = ret == 0 ? 0 : errno;
    FdState& s = state(fd);
    if (ret == 0) {
      complete(token, IoOp::Connect, 0);
    } else if (err == EINPROGRESS || err == EINTR) {
      s.connect = Pending{true, token};
    } else {
      complete(token, IoOp::Connect, -err);
    }
  }

  // Also takes fd out of the epoll set: whoever owns fd may close it later without telling
  // us (a listening socket), and a new socket that gets the same number must be registered
  // afresh.
  void cancel(int fd) override {
    if (fd < 0 || static_cast<size_t>(fd) >= fds_.size()) return;
    FdState& s = fds_[static_cast<size_t>(fd)];
    if (s.accept.active) complete(s.accept.token, IoOp::Accept, -ECANCELED);
    if (s.recv.active) complete(s.recv.token, IoOp::Recv, -ECANCELED);
    if (s.send.active) complete(s.send.token, IoOp::Send, -ECANCELED);
    if (s.connect.active) complete(s.connect.token, IoOp::Connect, -ECANCELED);
    if (s.registered) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    s = FdState{};
  }

  void close(int fd) override {
    cancel(fd);
    ::close(fd);
  }

  void release(IoBuffer b) noexcept override { pool_.release(b); }

  bool wait(std::optional<std::chrono::nanoseconds> timeout, std::vector<IoCompletion>& out) override {
    int ms = -1;
    if (!ready_.empty()) {
      ms = 0;
    } else if (timeout) {
      // Round up: waking early would only make the caller wait again.
      ms = static_cast<int>(std::min<int64_t>((std::max<int64_t>(0, timeout->count()) + 999'999) / 1'000'000,
                                              24 * 3600 * 1000));
    }
    epoll_event events[kMaxEvents];
    int n = epoll_wait(epoll_fd_, events, kMaxEvents, ms);
    if (n < 0 && errno != EINTR) return false;
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == wake_fd_) {
        uint64_t value;
        [[maybe_unused]] ssize_t r = ::read(wake_fd_, &value, sizeof value);
        continue;
      }
      if (fd < 0 || static_cast<size_t>(fd) >= fds_.size()) continue;
      FdState& s = fds_[static_cast<size_t>(fd)];
      uint32_t e = events[i].events;
      bool readable = e & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP);
      bool writable = e & (EPOLLOUT | EPOLLERR | EPOLLHUP);
      if (readable && s.accept.active) try_accept(fd, s);
      if (readable && s.recv.active) try_recv(fd, s);
      if (writable && s.connect.active) finish_connect(fd, s);
      if (writable && s.send.active) try_send(fd, s);
    }
    out.insert(out.end(), ready_.begin(), ready_.end());
    ready_.clear();
    return true;
  }

  void wake() noexcept override {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
  }

 private:
  struct Pending {
    bool active = false;
    uint64_t token = 0;
  };
  struct FdState {
    bool registered = false;
    Pending accept, recv, send, connect;
    const uint8_t* send_data = nullptr;
    uint32_t send_len = 0;
  };

  FdState& state(int fd) {
    auto index = static_cast<size_t>(fd);
    if (index >= fds_.size()) fds_.resize(std::max(index + 1, fds_.size() * 2));
    FdState& s = fds_[index];
    if (!s.registered) {
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
      ev.data.fd = fd;
      // A failure here (ENOMEM) shows up as the operation never finishing; the caller's
      // time-outs end it.
      s.registered = epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) == 0;
    }
    return s;
  }

  void complete(uint64_t token, IoOp op, int32_t result, bool more = false, IoBuffer buffer = {}) {
    IoCompletion c;
    c.token = token;
    c.op = op;
    c.result = result;
    c.more = more;
    c.buffer = buffer;
    ready_.push_back(c);
  }

  void try_accept(int fd, FdState& s) {
    // Edge-triggered: take every waiting connection, or the next edge never comes.
    for (;;) {
      int client = ::accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (client >= 0) {
        complete(s.accept.token, IoOp::Accept, client, true);
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR || errno == ECONNABORTED) continue;
      // Out of descriptors or memory: say so, and stay armed for the next connection.
      complete(s.accept.token, IoOp::Accept, -errno, true);
      return;
    }
  }

  void try_recv(int fd, FdState& s) {
    auto buffer = pool_.acquire();
    if (!buffer) {
      complete(s.recv.token, IoOp::Recv, -ENOMEM);
      s.recv = Pending{};
      return;
    }
    ssize_t n;
    do {
      n = ::recv(fd, buffer->data, options_.buffer_size, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pool_.release(*buffer);
      return;
    }
    if (n > 0) {
      complete(s.recv.token, IoOp::Recv, static_cast<int32_t>(n), false, *buffer);
    } else {
      pool_.release(*buffer);
      complete(s.recv.token, IoOp::Recv, n == 0 ? 0 : -errno);
    }
    s.recv = Pending{};
  }

  void try_send(int fd, FdState& s) {
    ssize_t n;
    do {
      n = ::send(fd, s.send_data, s.send_len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    complete(s.send.token, IoOp::Send, n >= 0 ? static_cast<int32_t>(n) : -errno);
    s.send = Pending{};
  }

  void finish_connect(int fd, FdState& s) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == EINPROGRESS || err == EALREADY) return;
    complete(s.connect.token, IoOp::Connect, -err);
    s.connect = Pending{};
  }

  IoOptions options_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::vector<FdState> fds_;
  std::vector<IoCompletion> ready_;
  BufferPool pool_;
};

}  // namespace

std::unique_ptr<IoLoop> make_epoll_loop(const IoOptions& options, std::string& error) {
  auto loop = std::make_unique<EpollLoop>(options);
  if (!loop->init(error)) return nullptr;
  return loop;
}

}  // namespace hafront::proxy
