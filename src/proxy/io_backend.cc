#include "proxy/io_backend.h"

#include <liburing.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <new>

namespace hafront::proxy {

std::optional<IoBuffer> BufferPool::acquire() noexcept {
  if (free_.empty()) {
    auto* block = new (std::nothrow) uint8_t[size_];
    if (!block) return std::nullopt;
    try {
      blocks_.emplace_back(block);
      free_.reserve(blocks_.size());
    } catch (const std::bad_alloc&) {
      if (blocks_.empty() || blocks_.back().get() != block) delete[] block;
      return std::nullopt;
    }
    return IoBuffer{block, first_id_ + static_cast<uint32_t>(blocks_.size() - 1)};
  }
  uint32_t index = free_.back();
  free_.pop_back();
  return IoBuffer{blocks_[index].get(), first_id_ + index};
}

void BufferPool::release(IoBuffer b) noexcept {
  if (!owns(b)) return;
  // reserve() in acquire() keeps room for every block, so this never allocates.
  free_.push_back(b.id - first_id_);
}

namespace {

// A file descriptor closed when it goes out of scope (probe helpers only).
struct ScopedFd {
  int fd = -1;
  ~ScopedFd() {
    if (fd >= 0) ::close(fd);
  }
};

struct ScopedRing {
  io_uring ring{};
  bool up = false;
  ~ScopedRing() {
    if (up) io_uring_queue_exit(&ring);
  }
};

// Submits one prepared SQE and returns the result of the completion whose user_data is `ud`
// (other completions are skipped).
int run_one(io_uring& ring, uint64_t ud) {
  if (io_uring_submit(&ring) < 0) return -EIO;
  for (int i = 0; i < 4; ++i) {
    io_uring_cqe* cqe = nullptr;
    __kernel_timespec ts{1, 0};
    if (io_uring_wait_cqe_timeout(&ring, &cqe, &ts) < 0 || !cqe) return -ETIME;
    uint64_t got = cqe->user_data;
    int res = cqe->res;
    io_uring_cqe_seen(&ring, cqe);
    if (got == ud) return res;
  }
  return -ETIME;
}

}  // namespace

IoProbe probe_io_uring() {
  IoProbe p;
  ScopedRing r;
  int ret = io_uring_queue_init(8, &r.ring, 0);
  if (ret < 0) {
    p.why_not = std::string("io_uring_setup failed: ") + std::strerror(-ret) +
                (ret == -EPERM ? " (disabled by kernel.io_uring_disabled or a seccomp filter)" : "");
    return p;
  }
  r.up = true;
  if (!(r.ring.features & IORING_FEAT_EXT_ARG) || !(r.ring.features & IORING_FEAT_FAST_POLL)) {
    p.why_not = "the kernel's io_uring lacks waiting with a time-out argument or fast poll (needs 5.11)";
    return p;
  }
  io_uring_probe* probe = io_uring_get_probe_ring(&r.ring);
  if (!probe) {
    p.why_not = "io_uring cannot describe its operations (needs 5.6)";
    return p;
  }
  struct Needed {
    int op;
    const char* name;
  };
  static constexpr Needed kNeeded[] = {
      {IORING_OP_ACCEPT, "accept"},        {IORING_OP_RECV, "recv"},   {IORING_OP_SEND, "send"},
      {IORING_OP_CONNECT, "connect"},      {IORING_OP_CLOSE, "close"}, {IORING_OP_ASYNC_CANCEL, "cancel"},
      {IORING_OP_POLL_ADD, "poll"},
  };
  for (const auto& n : kNeeded) {
    if (!io_uring_opcode_supported(probe, n.op)) {
      io_uring_free_probe(probe);
      p.why_not = std::string("io_uring has no ") + n.name + " operation";
      return p;
    }
  }
  io_uring_free_probe(probe);

  // Multishot accept and cancellation by file descriptor (both 5.19) cannot be told from
  // the opcode list: try them on an abstract unix socket that nobody else can reach.
  ScopedFd listener{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  sockaddr_un autobind{};
  autobind.sun_family = AF_UNIX;
  if (listener.fd < 0 || ::bind(listener.fd, reinterpret_cast<sockaddr*>(&autobind), sizeof(sa_family_t)) != 0 ||
      ::listen(listener.fd, 1) != 0) {
    p.why_not = std::string("cannot make a probe socket: ") + std::strerror(errno);
    return p;
  }
  io_uring_sqe* sqe = io_uring_get_sqe(&r.ring);
  io_uring_prep_multishot_accept(sqe, listener.fd, nullptr, nullptr, SOCK_CLOEXEC);
  sqe->user_data = 1;
  if (io_uring_submit(&r.ring) < 0) {
    p.why_not = "io_uring submit failed";
    return p;
  }
  sqe = io_uring_get_sqe(&r.ring);
  io_uring_prep_cancel_fd(sqe, listener.fd, IORING_ASYNC_CANCEL_ALL);
  sqe->user_data = 2;
  int cancel = run_one(r.ring, 2);
  if (cancel == -EINVAL) {
    p.why_not = "io_uring cannot cancel by file descriptor (needs 5.19)";
    return p;
  }
  int accepted = run_one(r.ring, 1);
  if (accepted != -ECANCELED) {
    p.why_not = std::string("io_uring multishot accept is unsupported (needs 5.19): ") + std::strerror(-accepted);
    return p;
  }
  p.io_uring = true;

  // Provided buffer rings (5.19): register a small one and take it away again.
  const size_t bytes = 4096;
  void* mem = nullptr;
  if (posix_memalign(&mem, 4096, bytes) == 0) {
    std::memset(mem, 0, bytes);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uintptr_t>(mem);
    reg.ring_entries = 8;
    reg.bgid = 0;
    if (io_uring_register_buf_ring(&r.ring, &reg, 0) == 0) {
      p.buffer_ring = true;
      io_uring_unregister_buf_ring(&r.ring, 0);
    }
    free(mem);
  }
  return p;
}

}  // namespace hafront::proxy
