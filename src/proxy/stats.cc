#include "proxy/stats.h"

#include <algorithm>
#include <optional>

namespace hafront::proxy {

size_t connect_bucket(uint64_t microseconds) noexcept {
  auto it = std::lower_bound(kConnectBucketsUs.begin(), kConnectBucketsUs.end(), microseconds);
  return static_cast<size_t>(it - kConnectBucketsUs.begin());
}

ServiceTotals totals(const ServiceStats& stats) noexcept {
  ServiceTotals t;
  for (size_t w = 0; w < stats.size(); ++w) {
    const ServiceCounters& c = stats.at(w);
    t.connections += c.connections.get();
    t.active += c.active.get();
    t.queued += c.queued.get();
    t.bytes_from_clients += c.bytes_from_clients.get();
    t.bytes_to_clients += c.bytes_to_clients.get();
    for (size_t k = 0; k < t.errors.size(); ++k) t.errors[k] += c.errors[k].get();
    t.requests += c.requests.get();
    for (size_t k = 0; k < t.responses.size(); ++k) t.responses[k] += c.responses[k].get();
  }
  return t;
}

ServerTotals totals(const ServerStats& stats) noexcept {
  ServerTotals t;
  for (size_t w = 0; w < stats.size(); ++w) {
    const ServerCounters& c = stats.at(w);
    t.connections += c.connections.get();
    t.active += c.active.get();
    t.bytes_to_server += c.bytes_to_server.get();
    t.bytes_from_server += c.bytes_from_server.get();
    for (size_t k = 0; k < t.errors.size(); ++k) t.errors[k] += c.errors[k].get();
    for (size_t k = 0; k < t.connect_time.size(); ++k) t.connect_time[k] += c.connect_time[k].get();
    t.requests += c.requests.get();
    for (size_t k = 0; k < t.responses.size(); ++k) t.responses[k] += c.responses[k].get();
    for (size_t k = 0; k < t.response_time.size(); ++k) t.response_time[k] += c.response_time[k].get();
  }
  return t;
}

std::optional<uint64_t> connect_percentile(const ServerTotals& t, double percent) noexcept {
  return bucket_percentile(t.connect_time, percent);
}

std::optional<uint64_t> bucket_percentile(const std::array<uint64_t, kConnectBuckets>& counts, double percent) noexcept {
  uint64_t total = 0;
  for (uint64_t n : counts) total += n;
  if (total == 0) return std::nullopt;
  auto rank = static_cast<uint64_t>(static_cast<double>(total) * percent / 100.0 + 0.999999);
  rank = std::clamp<uint64_t>(rank, 1, total);
  uint64_t seen = 0;
  for (size_t k = 0; k < counts.size(); ++k) {
    seen += counts[k];
    if (seen >= rank) return k < kConnectBucketsUs.size() ? uint64_t{kConnectBucketsUs[k]} : UINT64_MAX;
  }
  return UINT64_MAX;
}

}  // namespace hafront::proxy
