// The I/O back-end of one data-plane worker: a small completion-based interface with two
// implementations, io_uring (liburing) and an epoll fallback that behaves the same way.
//
// The caller submits operations, each tagged with a 64-bit token of its own, and later
// collects their completions from wait(). A completion never arrives from inside the call
// that submitted it (the epoll back-end queues the ones that finish at once), so the
// caller's state machines see the same order of events whichever back-end runs. One
// back-end belongs to one thread; only wake() may be called from another.
//
// Buffers: the back-end chooses where received data lands. io_uring receives into a
// provided buffer ring when the kernel has it (idle connections then hold no buffer), and
// into buffers of its own pool otherwise (or when the ring is empty: -ENOBUFS is not an
// error, the receive is simply submitted again with a pool buffer). A completed receive of
// n > 0 bytes hands one buffer to the caller, who gives it back with release() once the
// bytes are sent on. Every buffer is `buffer_size` bytes.
//
// Cancellation: cancel(fd) ends every operation pending on fd; close(fd) cancels them and
// closes fd. Their completions still arrive (with -ECANCELED, or with their result if they
// finished first), so the caller must keep memory it lent to a send until then.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/proxy_types.h"

namespace hafront::proxy {

// A buffer holding received bytes, lent by the back-end until release().
struct IoBuffer {
  static constexpr uint32_t kNone = UINT32_MAX;
  uint8_t* data = nullptr;
  uint32_t id = kNone;
  bool valid() const noexcept { return id != kNone; }
};

enum class IoOp : uint8_t { Accept, Recv, Send, Connect };

struct IoCompletion {
  uint64_t token = 0;
  IoOp op = IoOp::Recv;
  // >= 0: success (Accept: the new socket; Recv/Send: bytes; Connect: 0); < 0: -errno.
  int32_t result = 0;
  // Accept: the accept stays armed and more completions will come. When false, the
  // accept has ended (cancelled or failed) and must be submitted again to go on.
  bool more = false;
  IoBuffer buffer;  // Recv with result > 0
};

struct IoOptions {
  uint32_t buffer_size = 16 * 1024;
  // io_uring: buffers in the provided buffer ring (a power of two), and the SQ size.
  uint32_t ring_buffers = 256;
  uint32_t queue_depth = 1024;
};

class IoLoop {
 public:
  virtual ~IoLoop() = default;

  virtual IoBackend kind() const noexcept = 0;
  // Short description for the start-up log ("io_uring, provided buffer ring of 256 x 16 KiB").
  virtual std::string describe() const = 0;
  // Sockets this back-end is given must be non-blocking (epoll) or blocking (io_uring, which
  // polls internally; a non-blocking socket could hand -EAGAIN back).
  virtual bool wants_nonblocking() const noexcept = 0;

  // A listening socket: one completion per accepted connection (result: the new socket,
  // close-on-exec, non-blocking if wants_nonblocking()), until cancel(listen_fd).
  virtual void accept(int listen_fd, uint64_t token) = 0;
  // Receives up to buffer_size bytes. Result 0: the peer shut down its side.
  virtual void recv(int fd, uint64_t token) = 0;
  // Sends up to len bytes of data (kept alive by the caller until the completion); the
  // result may be short.
  virtual void send(int fd, const uint8_t* data, uint32_t len, uint64_t token) = 0;
  // Connects fd (a fresh socket) to addr; the address is copied.
  virtual void connect(int fd, const sockaddr* addr, socklen_t len, uint64_t token) = 0;
  // Ends every operation pending on fd (their completions arrive with -ECANCELED). The
  // back-end forgets fd: its owner may close it without going through close().
  virtual void cancel(int fd) = 0;
  // Cancels what is pending on fd and closes it.
  virtual void close(int fd) = 0;
  // Gives a receive buffer back.
  virtual void release(IoBuffer buffer) noexcept = 0;

  // Submits what was queued and waits until at least one completion is ready, wake() is
  // called, or the time-out passes (nullopt: no time-out). Appends completions to `out`.
  // Returns false only on an unexpected error of the back-end itself.
  virtual bool wait(std::optional<std::chrono::nanoseconds> timeout, std::vector<IoCompletion>& out) = 0;
  // Makes a concurrent or later wait() return. Safe from any thread.
  virtual void wake() noexcept = 0;
};

// What the kernel offers, found at start-up.
struct IoProbe {
  bool io_uring = false;      // every operation the back-end needs, multishot accept included
  bool buffer_ring = false;   // provided buffer rings (5.19)
  std::string why_not;        // when !io_uring: the reason, for the log
};

IoProbe probe_io_uring();

// Back-end choice: auto (io_uring when the probe allows it), or forced.
enum class IoChoice : uint8_t { Auto, IoUring, Epoll };

// Makes a back-end for the calling thread. nullptr and `error` set when it cannot.
std::unique_ptr<IoLoop> make_io_uring_loop(const IoOptions& options, bool use_buffer_ring, std::string& error);
std::unique_ptr<IoLoop> make_epoll_loop(const IoOptions& options, std::string& error);

// A pool of equal-sized buffers, for receives that do not use a buffer ring. Ids start at
// `first_id`, so a back-end can tell its ring buffers from pool buffers. Grows on demand.
class BufferPool {
 public:
  BufferPool(uint32_t buffer_size, uint32_t first_id) : size_(buffer_size), first_id_(first_id) {}

  // nullopt only when memory is exhausted.
  std::optional<IoBuffer> acquire() noexcept;
  void release(IoBuffer b) noexcept;
  bool owns(const IoBuffer& b) const noexcept { return b.valid() && b.id >= first_id_; }
  uint32_t buffer_size() const noexcept { return size_; }
  size_t allocated() const noexcept { return blocks_.size(); }
  size_t in_use() const noexcept { return blocks_.size() - free_.size(); }

 private:
  uint32_t size_;
  uint32_t first_id_;
  std::vector<std::unique_ptr<uint8_t[]>> blocks_;
  std::vector<uint32_t> free_;
};

}  // namespace hafront::proxy
