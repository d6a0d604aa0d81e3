// The routing snapshot's publication (the RCU-like swap) and the per-worker shares.
#include "proxy/routing.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <thread>

namespace hafront::proxy {
namespace {

std::shared_ptr<RoutingSnapshot> snapshot(uint64_t version) {
  auto s = std::make_shared<RoutingSnapshot>();
  s->version = version;
  return s;
}

TEST(ProxySnapshot, ReadersKeepWhatTheyTookWhileANewOneIsPublished) {
  SnapshotSlot slot;
  EXPECT_EQ(slot.version(), 0u);
  EXPECT_EQ(slot.load(), nullptr);
  slot.publish(snapshot(1));
  std::shared_ptr<const RoutingSnapshot> held = slot.load();
  std::weak_ptr<const RoutingSnapshot> first = held;
  ASSERT_EQ(held->version, 1u);
  slot.publish(snapshot(2));
  EXPECT_EQ(slot.version(), 2u);
  EXPECT_EQ(held->version, 1u) << "a reader's snapshot never changes under it";
  EXPECT_FALSE(first.expired());
  EXPECT_EQ(slot.load()->version, 2u);
  held.reset();
  EXPECT_TRUE(first.expired()) << "the old snapshot goes with its last reader";
}

TEST(ProxySnapshot, ConcurrentReadersSeeWholeSnapshotsInOrder) {
  SnapshotSlot slot;
  slot.publish(snapshot(1));
  std::atomic<bool> done{false};
  std::atomic<uint64_t> reads{0};
  std::atomic<bool> out_of_order{false};
  auto reader = [&] {
    uint64_t seen = 0;
    for (bool last = false; !last;) {
      last = done.load();
      uint64_t v = slot.version();
      if (v == seen) continue;
      auto s = slot.load();
      // The snapshot is at least as new as the version that announced it.
      if (!s || s->version < v || s->version < seen) out_of_order = true;
      seen = s->version;
      reads.fetch_add(1);
    }
  };
  std::thread a(reader), b(reader);
  for (uint64_t v = 2; v <= 2000; ++v) slot.publish(snapshot(v));
  done = true;
  a.join();
  b.join();
  EXPECT_FALSE(out_of_order.load());
  EXPECT_GE(reads.load(), 1u);
  EXPECT_EQ(slot.load()->version, 2000u);
}

TEST(ProxySnapshot, ListenerSocketsCloseWithTheirLastHolder) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  auto sockets = std::make_shared<ListenerSockets>(7, config::Endpoint{}, std::vector<int>{fds[0], fds[1]});
  EXPECT_EQ(sockets->fd(1), fds[1]);
  EXPECT_EQ(sockets->fd(2), -1);
  auto snap = snapshot(1);
  snap->listeners.push_back({sockets, 0});
  sockets.reset();
  EXPECT_NE(fcntl(fds[0], F_GETFD), -1) << "still held by the snapshot";
  snap.reset();
  EXPECT_EQ(fcntl(fds[0], F_GETFD), -1);
  EXPECT_EQ(fcntl(fds[1], F_GETFD), -1);
}

TEST(ProxySnapshot, WorkerSharesAddUpAndNeverTurnIntoNoLimit) {
  uint32_t total = 0;
  for (uint32_t w = 0; w < 3; ++w) total += worker_share(10, w, 3);
  EXPECT_EQ(total, 10u);
  EXPECT_EQ(worker_share(10, 0, 3), 4u);
  EXPECT_EQ(worker_share(10, 2, 3), 3u);
  EXPECT_EQ(worker_share(1, 3, 4), 1u) << "0 would mean no limit at all";
  EXPECT_EQ(worker_share(0, 1, 4), 0u) << "no limit stays no limit";
}

TEST(ProxySnapshot, SessionOptionsComeFromTheService) {
  config::Service s;
  s.timeouts.connect = config::Duration{250};
  s.timeouts.idle = config::Duration{9000};
  s.retries = 1;
  s.redispatch = false;
  SessionOptions o = session_options(s);
  EXPECT_EQ(o.timeouts.connect.count(), 250);
  EXPECT_EQ(o.timeouts.idle.count(), 9000);
  EXPECT_EQ(o.timeouts.client.count(), 60000);
  EXPECT_EQ(o.retries, 1u);
  EXPECT_FALSE(o.redispatch);
}

}  // namespace
}  // namespace hafront::proxy
