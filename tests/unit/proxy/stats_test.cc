// Per-worker counters summed for status, and the connect-time histogram.
#include "proxy/stats.h"

#include <gtest/gtest.h>

namespace hafront::proxy {
namespace {

TEST(ProxyStats, WorkersCountApartAndStatusSumsThem) {
  ServiceStats s(3);
  s.at(0).connections.add(2);
  s.at(2).connections.add(5);
  s.at(1).active.add();
  s.at(1).active.add();
  s.at(1).active.sub();
  s.at(2).errors[static_cast<size_t>(ErrorKind::ConnectRefused)].add();
  ServiceTotals t = totals(s);
  EXPECT_EQ(t.connections, 7u);
  EXPECT_EQ(t.active, 1u);
  EXPECT_EQ(t.errors[static_cast<size_t>(ErrorKind::ConnectRefused)], 1u);
  EXPECT_EQ(alignof(ServiceCounters), 64u) << "workers never share a cache line";
}

TEST(ProxyStats, ConnectTimeBucketsAndPercentiles) {
  EXPECT_EQ(connect_bucket(0), 0u);
  EXPECT_EQ(connect_bucket(100), 0u);
  EXPECT_EQ(connect_bucket(101), 1u);
  EXPECT_EQ(connect_bucket(10'000'000), kConnectBuckets - 1);
  ServerStats s(2);
  EXPECT_FALSE(connect_percentile(totals(s), 50).has_value());
  for (int i = 0; i < 98; ++i) s.at(i % 2).connect_time[connect_bucket(80)].add();
  s.at(0).connect_time[connect_bucket(2000)].add();
  s.at(1).connect_time[connect_bucket(60'000'000)].add();
  ServerTotals t = totals(s);
  EXPECT_EQ(connect_percentile(t, 50), 100u);
  EXPECT_EQ(connect_percentile(t, 99), 2500u);
  EXPECT_EQ(connect_percentile(t, 100), UINT64_MAX);
}

}  // namespace
}  // namespace hafront::proxy
