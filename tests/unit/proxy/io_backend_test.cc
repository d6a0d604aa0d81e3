// Both I/O back-ends against the same expectations, on unix sockets only: socket pairs and a
// listener in a temporary folder. The io_uring cases skip when the kernel refuses io_uring.
#include "proxy/io_backend.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "temp_dir.h"

namespace hafront::proxy {
namespace {

using hafront::test_support::TempDir;

using namespace std::chrono_literals;

struct Fd {
  int fd = -1;
  explicit Fd(int f = -1) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  int release() {
    int f = fd;
    fd = -1;
    return f;
  }
};

class ProxyIoBackend : public ::testing::TestWithParam<IoBackend> {
 protected:
  void SetUp() override { loop_ = make(IoOptions{}); }

  std::unique_ptr<IoLoop> make(IoOptions o, bool buffer_ring = true) {
    std::string error;
    std::unique_ptr<IoLoop> loop;
    if (GetParam() == IoBackend::IoUring) {
      IoProbe p = probe_io_uring();
      if (!p.io_uring) return nullptr;
      loop = make_io_uring_loop(o, buffer_ring && p.buffer_ring, error);
    } else {
      loop = make_epoll_loop(o, error);
    }
    EXPECT_TRUE(loop) << error;
    return loop;
  }

  void pair(Fd& a, Fd& b) {
    int fds[2];
    int flags = SOCK_STREAM | SOCK_CLOEXEC | (loop_->wants_nonblocking() ? SOCK_NONBLOCK : 0);
    ASSERT_EQ(socketpair(AF_UNIX, flags, 0, fds), 0);
    a.fd = fds[0];
    b.fd = fds[1];
  }

  // Waits until `n` completions have come (or 5 s passed).
  std::vector<IoCompletion> collect(size_t n, IoLoop* loop = nullptr) {
    loop = loop ? loop : loop_.get();
    std::vector<IoCompletion> out;
    auto until = std::chrono::steady_clock::now() + 5s;
    while (out.size() < n && std::chrono::steady_clock::now() < until) loop->wait(50ms, out);
    return out;
  }

  std::unique_ptr<IoLoop> loop_;
};

#define NEED_LOOP() \
  if (!loop_) GTEST_SKIP() << "io_uring is not available here"

TEST_P(ProxyIoBackend, ReceivesIntoALentBufferAndSends) {
  NEED_LOOP();
  EXPECT_EQ(loop_->kind(), GetParam());
  Fd a, b;
  pair(a, b);
  loop_->recv(a.fd, 7);
  static const uint8_t kHello[] = {'h', 'e', 'l', 'l', 'o'};
  loop_->send(b.fd, kHello, sizeof kHello, 8);
  auto done = collect(2);
  ASSERT_EQ(done.size(), 2u);
  for (const auto& c : done) {
    if (c.token == 8) {
      EXPECT_EQ(c.op, IoOp::Send);
      EXPECT_EQ(c.result, 5);
    } else {
      ASSERT_EQ(c.token, 7u);
      EXPECT_EQ(c.op, IoOp::Recv);
      ASSERT_EQ(c.result, 5);
      ASSERT_TRUE(c.buffer.valid());
      EXPECT_EQ(std::memcmp(c.buffer.data, kHello, 5), 0);
      loop_->release(c.buffer);
    }
  }
}

TEST_P(ProxyIoBackend, EndOfStreamIsAZeroByteReceive) {
  NEED_LOOP();
  Fd a, b;
  pair(a, b);
  loop_->recv(a.fd, 1);
  ::shutdown(b.fd, SHUT_WR);
  auto done = collect(1);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].result, 0);
  EXPECT_FALSE(done[0].buffer.valid());
}

TEST_P(ProxyIoBackend, BytesWaitingBeforeTheReceiveCompleteOnTheNextWait) {
  NEED_LOOP();
  Fd a, b;
  pair(a, b);
  ASSERT_EQ(::write(b.fd, "x", 1), 1);  // ready before the receive is even submitted
  loop_->recv(a.fd, 1);
  auto out = collect(1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].result, 1);
  loop_->release(out[0].buffer);
}

TEST_P(ProxyIoBackend, CancelEndsAPendingReceive) {
  NEED_LOOP();
  Fd a, b;
  pair(a, b);
  loop_->recv(a.fd, 3);
  std::vector<IoCompletion> out;
  loop_->wait(10ms, out);
  EXPECT_TRUE(out.empty());
  loop_->cancel(a.fd);
  out = collect(1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].token, 3u);
  EXPECT_EQ(out[0].result, -ECANCELED);
}

TEST_P(ProxyIoBackend, CloseCancelsAndCloses) {
  NEED_LOOP();
  Fd a, b;
  pair(a, b);
  loop_->recv(a.fd, 4);
  loop_->close(a.release());
  auto out = collect(1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].result, -ECANCELED);
  // The peer sees the close.
  char c;
  auto until = std::chrono::steady_clock::now() + 5s;
  ssize_t n;
  do {
    n = ::recv(b.fd, &c, 1, MSG_DONTWAIT);
  } while (n < 0 && errno == EAGAIN && std::chrono::steady_clock::now() < until);
  EXPECT_EQ(n, 0);
}

TEST_P(ProxyIoBackend, AcceptStaysArmedAndConnectCompletes) {
  NEED_LOOP();
  TempDir tmp("hafront-io-");
  const std::filesystem::path& dir = tmp.path;
  std::string path = (dir / "l.sock").string();
  Fd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (loop_->wants_nonblocking() ? SOCK_NONBLOCK : 0), 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(listener.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener.fd, 16), 0);
  loop_->accept(listener.fd, 100);
  std::vector<std::unique_ptr<Fd>> clients;
  for (uint64_t i = 0; i < 2; ++i) {
    clients.push_back(std::make_unique<Fd>(
        ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (loop_->wants_nonblocking() ? SOCK_NONBLOCK : 0), 0)));
    loop_->connect(clients.back()->fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr, 200 + i);
  }
  auto out = collect(4);
  int accepted = 0, connected = 0;
  for (const auto& c : out) {
    if (c.op == IoOp::Accept) {
      EXPECT_EQ(c.token, 100u);
      EXPECT_GE(c.result, 0);
      EXPECT_TRUE(c.more);
      if (c.result >= 0) ::close(c.result);
      ++accepted;
    } else {
      EXPECT_EQ(c.op, IoOp::Connect);
      EXPECT_EQ(c.result, 0);
      ++connected;
    }
  }
  EXPECT_EQ(accepted, 2);
  EXPECT_EQ(connected, 2);
  loop_->cancel(listener.fd);
  out = collect(1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].op, IoOp::Accept);
  EXPECT_FALSE(out[0].more);
}

TEST_P(ProxyIoBackend, ASocketClosedByItsOwnerAfterCancelLeavesNoTrace) {
  NEED_LOOP();
  Fd a, b;
  pair(a, b);
  loop_->recv(a.fd, 1);
  loop_->cancel(a.fd);
  ASSERT_EQ(collect(1).size(), 1u);
  int number = a.fd;
  ::close(a.release());  // the owner closes it behind the back-end's back (a listener does)
  Fd c, d;
  pair(c, d);
  ASSERT_EQ(c.fd, number) << "the test needs the number reused";
  loop_->recv(c.fd, 2);
  ASSERT_EQ(::write(d.fd, "z", 1), 1);
  auto out = collect(1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].token, 2u);
  EXPECT_EQ(out[0].result, 1);
  loop_->release(out[0].buffer);
}

TEST_P(ProxyIoBackend, ConnectToNobodyIsRefused) {
  NEED_LOOP();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, "/nonexistent/hafront-test.sock", sizeof addr.sun_path - 1);
  Fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (loop_->wants_nonblocking() ? SOCK_NONBLOCK : 0), 0));
  loop_->connect(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr, 9);
  auto out = collect(1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].result, -ENOENT);
}

TEST_P(ProxyIoBackend, WaitReturnsOnTimeOutAndOnWake) {
  NEED_LOOP();
  std::vector<IoCompletion> out;
  EXPECT_TRUE(loop_->wait(20ms, out));
  EXPECT_TRUE(out.empty());
  std::thread waker([&] {
    std::this_thread::sleep_for(20ms);
    loop_->wake();
  });
  EXPECT_TRUE(loop_->wait(std::nullopt, out));  // would block for ever without the wake
  waker.join();
}

TEST_P(ProxyIoBackend, MoreReceivesThanRingBuffersStillGetData) {
  NEED_LOOP();
  IoOptions o;
  o.ring_buffers = 2;
  auto loop = make(o);
  ASSERT_TRUE(loop);
  std::vector<std::unique_ptr<Fd>> ends;
  std::vector<IoBuffer> held;
  for (uint64_t i = 0; i < 5; ++i) {
    int fds[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (loop->wants_nonblocking() ? SOCK_NONBLOCK : 0), 0, fds), 0);
    ends.push_back(std::make_unique<Fd>(fds[0]));
    ends.push_back(std::make_unique<Fd>(fds[1]));
    ASSERT_EQ(::write(fds[1], "abc", 3), 3);
    loop->recv(fds[0], i);
  }
  auto out = collect(5, loop.get());
  ASSERT_EQ(out.size(), 5u);
  for (const auto& c : out) {
    EXPECT_EQ(c.result, 3) << "receive " << c.token;
    ASSERT_TRUE(c.buffer.valid());
    EXPECT_EQ(std::memcmp(c.buffer.data, "abc", 3), 0);
    held.push_back(c.buffer);
  }
  for (auto b : held) loop->release(b);
}

INSTANTIATE_TEST_SUITE_P(Backends, ProxyIoBackend, ::testing::Values(IoBackend::IoUring, IoBackend::Epoll),
                         [](const ::testing::TestParamInfo<IoBackend>& p) {
                           return p.param == IoBackend::IoUring ? "IoUring" : "Epoll";
                         });

TEST(ProxyIoProbe, SaysWhyWhenIoUringIsUnavailable) {
  IoProbe p = probe_io_uring();
  if (p.io_uring) {
    EXPECT_TRUE(p.why_not.empty());
  } else {
    EXPECT_FALSE(p.why_not.empty());
  }
}

TEST(ProxyBufferPool, ReusesReleasedBuffersAndKeepsIdsApart) {
  BufferPool pool(1024, 100);
  auto a = pool.acquire();
  auto b = pool.acquire();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->id, 100u);
  EXPECT_EQ(b->id, 101u);
  EXPECT_TRUE(pool.owns(*a));
  EXPECT_FALSE(pool.owns(IoBuffer{nullptr, 99}));
  pool.release(*a);
  auto c = pool.acquire();
  EXPECT_EQ(c->id, 100u);
  EXPECT_EQ(c->data, a->data);
  EXPECT_EQ(pool.allocated(), 2u);
  EXPECT_EQ(pool.in_use(), 2u);
}

}  // namespace
}  // namespace hafront::proxy
