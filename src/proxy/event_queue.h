// A bounded multi-producer, single-consumer queue and, on top of it, a channel that wakes
// a consumer through an eventfd: how workers report to the control plane (passive health
// events) and to the access-log writer without ever blocking.
//
// The queue is a ring of cells, each with a sequence number that says whether it is free
// for the producer at position p (seq == p) or filled for the consumer (seq == p + 1).
// Producers claim a position with one compare-and-swap; nobody waits for anybody, and a
// full queue makes push() fail at once (the channel drops the item and counts it).
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>

namespace hafront::proxy {

template <typename T>
class BoundedMpscQueue {
 public:
  // `capacity` is rounded up to a power of two.
  explicit BoundedMpscQueue(size_t capacity) {
    size_t n = 2;
    while (n < capacity) n *= 2;
    cells_ = std::make_unique<Cell[]>(n);
    mask_ = n - 1;
    for (size_t i = 0; i < n; ++i) cells_[i].seq.store(i, std::memory_order_relaxed);
  }

  size_t capacity() const noexcept { return mask_ + 1; }

  // Any thread. False when full.
  bool push(const T& value) noexcept {
    size_t pos = tail_.load(std::memory_order_relaxed);
    for (;;) {
      Cell& cell = cells_[pos & mask_];
      size_t seq = cell.seq.load(std::memory_order_acquire);
      auto diff = static_cast<intptr_t>(seq) - static_cast<intptr_t>(pos);
      if (diff == 0) {
        if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          cell.value = value;
          cell.seq.store(pos + 1, std::memory_order_release);
          return true;
        }
      } else if (diff < 0) {
        return false;  // the consumer has not freed this cell yet: full
      } else {
        pos = tail_.load(std::memory_order_relaxed);
      }
    }
  }

  // The consumer thread only. False when empty (or when the next item's producer has
  // claimed its cell but not finished writing it; it is there on the next call).
  bool pop(T& out) noexcept {
    Cell& cell = cells_[head_ & mask_];
    size_t seq = cell.seq.load(std::memory_order_acquire);
    if (seq != head_ + 1) return false;
    out = cell.value;
    cell.seq.store(head_ + mask_ + 1, std::memory_order_release);
    ++head_;
    return true;
  }

 private:
  struct Cell {
    std::atomic<size_t> seq{0};
    T value{};
  };
  std::unique_ptr<Cell[]> cells_;
  size_t mask_ = 0;
  alignas(64) std::atomic<size_t> tail_{0};
  alignas(64) size_t head_ = 0;
};

template <typename T>
class EventChannel {
 public:
  explicit EventChannel(size_t capacity) : queue_(capacity) {
    fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd_ < 0) throw std::runtime_error("eventfd failed");
  }
  ~EventChannel() { ::close(fd_); }
  EventChannel(const EventChannel&) = delete;
  EventChannel& operator=(const EventChannel&) = delete;

  // Any thread; never blocks. False (and counted in dropped()) when the queue is full.
  bool post(const T& value) noexcept {
    if (!queue_.push(value)) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    // One eventfd write per batch: only the producer that finds the flag down writes.
    if (!signalled_.exchange(true, std::memory_order_acq_rel)) {
      uint64_t one = 1;
      [[maybe_unused]] ssize_t n = ::write(fd_, &one, sizeof one);
    }
    return true;
  }

  // Readable when items may be waiting.
  int fd() const noexcept { return fd_; }

  // The consumer, once fd() was readable (or at any time): hands every waiting item to f.
  template <typename F>
  size_t drain(F&& f) {
    uint64_t value;
    [[maybe_unused]] ssize_t n = ::read(fd_, &value, sizeof value);
    // Lowered before popping: a producer that pushes after this point writes the eventfd
    // again; one that pushed before is seen by the pops below (the exchange pairs with its
    // exchange).
    signalled_.exchange(false, std::memory_order_acq_rel);
    size_t count = 0;
    T item;
    while (queue_.pop(item)) {
      f(item);
      ++count;
    }
    return count;
  }

  uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }

 private:
  BoundedMpscQueue<T> queue_;
  int fd_ = -1;
  std::atomic<bool> signalled_{false};
  std::atomic<uint64_t> dropped_{0};
};

}  // namespace hafront::proxy
