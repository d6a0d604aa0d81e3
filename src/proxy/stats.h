// Per-service and per-server counters of the data plane.
//
// Each worker writes only its own block of counters (its index into PerWorker), with
// relaxed atomic loads and stores: a single writer needs no read-modify-write, so counting
// costs what a plain increment costs and takes no lock. Readers (status, on the control
// thread) sum the blocks with relaxed loads; a sum may be a moment old, never torn.
// Blocks are cache-line aligned so workers never write the same line.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "proxy/proxy_types.h"

namespace hafront::proxy {

// A counter with one writer.
class Counter {
 public:
  void add(uint64_t n = 1) noexcept { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  void sub(uint64_t n = 1) noexcept { v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed); }
  uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// Upper bounds of the latency histogram buckets (connect time; in http mode also the
// response time, the server's time to first byte), in microseconds; one more bucket holds
// everything slower.
inline constexpr std::array<uint32_t, 15> kConnectBucketsUs = {100,    250,    500,    1000,    2500,
                                                               5000,   10000,  25000,  50000,   100000,
                                                               250000, 500000, 1000000, 2500000, 5000000};
inline constexpr size_t kConnectBuckets = kConnectBucketsUs.size() + 1;

size_t connect_bucket(uint64_t microseconds) noexcept;

// http mode: responses by status class, 1xx (a 101 that switched protocols) to 5xx.
inline constexpr size_t kStatusClasses = 5;
// The index of a status in a status-class array; kStatusClasses for none (no response).
inline size_t status_class(uint16_t status) noexcept {
  return status >= 100 && status < 600 ? status / 100 - 1 : kStatusClasses;
}

struct alignas(64) ServiceCounters {
  Counter connections;  // accepted
  Counter active;       // accepted and not ended
  Counter queued;       // waiting for a server slot now
  Counter bytes_from_clients;
  Counter bytes_to_clients;
  std::array<Counter, kErrorKinds> errors;
  // http mode
  Counter requests;  // request heads received (refused ones included)
  std::array<Counter, kStatusClasses> responses;
};

struct alignas(64) ServerCounters {
  Counter connections;  // successful connects
  Counter active;       // connecting or connected now
  Counter bytes_to_server;
  Counter bytes_from_server;
  std::array<Counter, kErrorKinds> errors;  // connect_*, server_timeout, server_reset
  std::array<Counter, kConnectBuckets> connect_time;
  // http mode
  Counter requests;  // requests sent to this server
  std::array<Counter, kStatusClasses> responses;
  std::array<Counter, kConnectBuckets> response_time;  // request sent to first response byte
};

// Plain sums, for status.
struct ServiceTotals {
  uint64_t connections = 0, active = 0, queued = 0, bytes_from_clients = 0, bytes_to_clients = 0;
  std::array<uint64_t, kErrorKinds> errors{};
  uint64_t requests = 0;
  std::array<uint64_t, kStatusClasses> responses{};
};

struct ServerTotals {
  uint64_t connections = 0, active = 0, bytes_to_server = 0, bytes_from_server = 0;
  std::array<uint64_t, kErrorKinds> errors{};
  std::array<uint64_t, kConnectBuckets> connect_time{};
  uint64_t requests = 0;
  std::array<uint64_t, kStatusClasses> responses{};
  std::array<uint64_t, kConnectBuckets> response_time{};
};

// One block of T per worker.
template <typename T>
class PerWorker {
 public:
  explicit PerWorker(size_t workers) : blocks_(std::make_unique<T[]>(workers)), n_(workers) {}
  T& at(size_t worker) noexcept { return blocks_[worker]; }
  const T& at(size_t worker) const noexcept { return blocks_[worker]; }
  size_t size() const noexcept { return n_; }

 private:
  std::unique_ptr<T[]> blocks_;
  size_t n_;
};

using ServiceStats = PerWorker<ServiceCounters>;
using ServerStats = PerWorker<ServerCounters>;

ServiceTotals totals(const ServiceStats& stats) noexcept;
ServerTotals totals(const ServerStats& stats) noexcept;

// The connect time below which `percent` of the connects finished, as the upper bound of
// its bucket (microseconds); nullopt without connects, UINT64_MAX past the last bound.
std::optional<uint64_t> connect_percentile(const ServerTotals& t, double percent) noexcept;
// The same for any histogram with these buckets (response times).
std::optional<uint64_t> bucket_percentile(const std::array<uint64_t, kConnectBuckets>& counts, double percent) noexcept;

}  // namespace hafront::proxy
