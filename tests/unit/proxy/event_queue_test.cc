// The bounded MPSC queue and the eventfd channel that carry passive health events and
// access log lines off the workers.
#include "proxy/event_queue.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <set>
#include <thread>
#include <vector>

#include "proxy/proxy_types.h"

namespace hafront::proxy {
namespace {

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

TEST(ProxyEventQueue, FifoUntilFullThenRefuses) {
  BoundedMpscQueue<int> q(4);
  EXPECT_EQ(q.capacity(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(q.push(i));
  EXPECT_FALSE(q.push(99));
  int v = -1;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(q.pop(v));
    EXPECT_EQ(v, i);
  }
  EXPECT_FALSE(q.pop(v));
  EXPECT_TRUE(q.push(5)) << "room again once the consumer took items";
}

TEST(ProxyEventQueue, ManyProducersLoseNothingThatFits) {
  BoundedMpscQueue<uint64_t> q(1 << 16);
  constexpr int kThreads = 4;
  constexpr uint64_t kEach = 10000;
  std::vector<std::thread> producers;
  for (int t = 0; t < kThreads; ++t) {
    producers.emplace_back([&q, t] {
      for (uint64_t i = 0; i < kEach; ++i) ASSERT_TRUE(q.push(uint64_t(t) << 32 | i));
    });
  }
  for (auto& p : producers) p.join();
  std::vector<uint64_t> next(kThreads, 0);
  uint64_t v;
  size_t n = 0;
  while (q.pop(v)) {
    auto t = static_cast<size_t>(v >> 32);
    EXPECT_EQ(v & 0xffffffff, next[t]) << "each producer's items stay in its order";
    next[t] = (v & 0xffffffff) + 1;
    ++n;
  }
  EXPECT_EQ(n, kThreads * kEach);
}

TEST(ProxyEventQueue, ChannelWakesTheConsumerAndCountsDrops) {
  EventChannel<PassiveEvent> ch(2);
  EXPECT_FALSE(readable(ch.fd()));
  EXPECT_TRUE(ch.post({1, PassiveEventKind::ConnectRefused, 111}));
  EXPECT_TRUE(readable(ch.fd()));
  EXPECT_TRUE(ch.post({2, PassiveEventKind::Reset, 104}));
  EXPECT_FALSE(ch.post({3, PassiveEventKind::ConnectTimeout, 0})) << "full: dropped, never blocks";
  EXPECT_EQ(ch.dropped(), 1u);
  std::vector<uint32_t> got;
  EXPECT_EQ(ch.drain([&](const PassiveEvent& e) { got.push_back(e.server_id); }), 2u);
  EXPECT_EQ(got, (std::vector<uint32_t>{1, 2}));
  EXPECT_FALSE(readable(ch.fd()));
  EXPECT_TRUE(ch.post({4, PassiveEventKind::ConnectError, 113}));
  EXPECT_TRUE(readable(ch.fd())) << "the next item after a drain signals again";
}

}  // namespace
}  // namespace hafront::proxy
