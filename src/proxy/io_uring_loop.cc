// The io_uring back-end.
//
// user_data of every SQE is an index + 1 into a table of operations (the token, what the
// operation is, the pool buffer it received into, the address it connects to); 0 marks
// SQEs whose completion nobody waits for (cancel, close) and kWakeData the poll on the
// wake-up eventfd. A completion is turned into an IoCompletion by a look-up in that table,
// so nothing about the caller's meaning of a token leaks in here.
#include <liburing.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <new>

#include "proxy/io_backend.h"

namespace hafront::proxy {
namespace {

constexpr uint64_t kIgnoreData = 0;
constexpr uint64_t kWakeData = UINT64_MAX;
constexpr uint16_t kBufferGroup = 0;

class UringLoop final : public IoLoop {
 public:
  explicit UringLoop(const IoOptions& options) : options_(options), pool_(options.buffer_size, options.ring_buffers) {}

  ~UringLoop() override {
    if (ring_up_) io_uring_queue_exit(&ring_);
    if (buf_ring_) munmap(buf_ring_, buf_ring_bytes_);
    if (ring_memory_) munmap(ring_memory_, ring_memory_bytes_);
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }

  bool init(bool use_buffer_ring, std::string& error) {
    wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) {
      error = std::string("eventfd: ") + std::strerror(errno);
      return false;
    }
    io_uring_params params{};
    // The worker is the only thread that submits; deferring task work to its waits keeps
    // completions from interrupting it. Older kernels refuse these flags: try less.
    const unsigned tries[] = {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, IORING_SETUP_COOP_TASKRUN, 0};
    int ret = -EINVAL;
    for (unsigned flags : tries) {
      std::memset(&params, 0, sizeof params);
      params.flags = flags | IORING_SETUP_CQSIZE;
      params.cq_entries = options_.queue_depth * 4;
      ret = io_uring_queue_init_params(options_.queue_depth, &ring_, &params);
      if (ret != -EINVAL) break;
    }
    if (ret < 0) {
      error = std::string("io_uring_queue_init: ") + std::strerror(-ret);
      return false;
    }
    ring_up_ = true;
    setup_flags_ = params.flags;
    if (use_buffer_ring && !setup_buffer_ring(error)) return false;
    arm_wake();
    return true;
  }

  IoBackend kind() const noexcept override { return IoBackend::IoUring; }

  std::string describe() const override {
    std::string out = "io_uring";
    if (buf_ring_) {
      out += ", provided buffer ring of " + std::to_string(options_.ring_buffers) + " x " +
             std::to_string(options_.buffer_size / 1024) + " KiB";
    } else {
      out += ", receive buffers per connection";
    }
    if (setup_flags_ & IORING_SETUP_DEFER_TASKRUN) out += ", deferred task work";
    return out;
  }

  bool wants_nonblocking() const noexcept override { return false; }

  void accept(int listen_fd, uint64_t token) override {
    uint32_t op = new_op(token, IoOp::Accept, listen_fd);
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_multishot_accept(sqe, listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, op + 1);
  }

  void recv(int fd, uint64_t token) override {
    uint32_t op = new_op(token, IoOp::Recv, fd);
    if (buf_ring_) {
      submit_ring_recv(op);
    } else {
      submit_pool_recv(op);
    }
  }

  void send(int fd, const uint8_t* data, uint32_t len, uint64_t token) override {
    uint32_t op = new_op(token, IoOp::Send, fd);
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_send(sqe, fd, data, len, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, op + 1);
  }

  void connect(int fd, const sockaddr* addr, socklen_t len, uint64_t token) override {
    uint32_t op = new_op(token, IoOp::Connect, fd);
    Op& o = ops_[op];
    std::memcpy(&o.addr, addr, std::min<size_t>(len, sizeof o.addr));
    o.addr_len = len;
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_connect(sqe, fd, reinterpret_cast<const sockaddr*>(&o.addr), o.addr_len);
    io_uring_sqe_set_data64(sqe, op + 1);
  }

  void cancel(int fd) override {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, kIgnoreData);
  }

  void close(int fd) override {
    // The cancel must reach the kernel while fd still names the socket, and the close must
    // not run before it: a hard link orders them even when nothing was there to cancel.
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, kIgnoreData);
    sqe->flags |= IOSQE_IO_HARDLINK;
    io_uring_sqe* close_sqe = io_uring_get_sqe(&ring_);
    if (!close_sqe) {
      // No room for the pair in this submission: push what is queued (the cancel with its
      // dangling link goes alone, which the kernel accepts) and close in the next one.
      sqe->flags &= static_cast<uint8_t>(~IOSQE_IO_HARDLINK);
      io_uring_submit(&ring_);
      close_sqe = get_sqe();
    }
    io_uring_prep_close(close_sqe, fd);
    io_uring_sqe_set_data64(close_sqe, kIgnoreData);
  }

  void release(IoBuffer b) noexcept override {
    if (!b.valid()) return;
    if (pool_.owns(b)) {
      pool_.release(b);
      return;
    }
    io_uring_buf_ring_add(buf_ring_, b.data, options_.buffer_size, static_cast<unsigned short>(b.id),
                          io_uring_buf_ring_mask(options_.ring_buffers), 0);
    io_uring_buf_ring_advance(buf_ring_, 1);
  }

  bool wait(std::optional<std::chrono::nanoseconds> timeout, std::vector<IoCompletion>& out) override {
    io_uring_cqe* cqe = nullptr;
    int ret;
    if (!ready_nomem_.empty()) timeout = std::chrono::nanoseconds{0};
    if (timeout) {
      auto ns = std::max<int64_t>(0, timeout->count());
      __kernel_timespec ts{ns / 1'000'000'000, ns % 1'000'000'000};
      ret = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    } else {
      ret = io_uring_submit_and_wait(&ring_, 1);
    }
    if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) return false;
    unsigned head;
    unsigned seen = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      handle(*cqe, out);
    }
    io_uring_cq_advance(&ring_, seen);
    flush_nomem(out);
    return true;
  }

  void wake() noexcept override {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
  }

 private:
  struct Op {
    uint64_t token = 0;
    IoOp op = IoOp::Recv;
    int fd = -1;
    IoBuffer pool_buffer;  // a receive into the pool
    sockaddr_storage addr{};
    socklen_t addr_len = 0;
  };

  bool setup_buffer_ring(std::string& error) {
    uint32_t n = options_.ring_buffers;
    if (n == 0 || (n & (n - 1)) != 0 || n > 32768) {
      error = "the buffer ring size must be a power of two up to 32768";
      return false;
    }
    buf_ring_bytes_ = n * sizeof(io_uring_buf);
    void* ring_mem = mmap(nullptr, buf_ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (ring_mem == MAP_FAILED) {
      error = std::string("mmap of the buffer ring: ") + std::strerror(errno);
      return false;
    }
    buf_ring_ = static_cast<io_uring_buf_ring*>(ring_mem);
    ring_memory_bytes_ = size_t{n} * options_.buffer_size;
    void* bufs = mmap(nullptr, ring_memory_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (bufs == MAP_FAILED) {
      error = std::string("mmap of the receive buffers: ") + std::strerror(errno);
      return false;
    }
    ring_memory_ = static_cast<uint8_t*>(bufs);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uintptr_t>(buf_ring_);
    reg.ring_entries = n;
    reg.bgid = kBufferGroup;
    int ret = io_uring_register_buf_ring(&ring_, &reg, 0);
    if (ret < 0) {
      error = std::string("io_uring_register_buf_ring: ") + std::strerror(-ret);
      return false;
    }
    io_uring_buf_ring_init(buf_ring_);
    int mask = io_uring_buf_ring_mask(n);
    for (uint32_t i = 0; i < n; ++i) {
      io_uring_buf_ring_add(buf_ring_, ring_memory_ + size_t{i} * options_.buffer_size, options_.buffer_size,
                            static_cast<unsigned short>(i), mask, static_cast<int>(i));
    }
    io_uring_buf_ring_advance(buf_ring_, static_cast<int>(n));
    return true;
  }

  io_uring_sqe* get_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    while (!sqe) {
      // The submission queue is full: hand it to the kernel and take a fresh entry.
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
  }

  uint32_t new_op(uint64_t token, IoOp kind, int fd) {
    uint32_t index;
    if (free_ops_.empty()) {
      index = static_cast<uint32_t>(ops_.size());
      ops_.emplace_back();
      free_ops_.reserve(ops_.size());
    } else {
      index = free_ops_.back();
      free_ops_.pop_back();
    }
    Op& o = ops_[index];
    o.token = token;
    o.op = kind;
    o.fd = fd;
    o.pool_buffer = {};
    return index;
  }

  void free_op(uint32_t index) { free_ops_.push_back(index); }

  void submit_ring_recv(uint32_t op) {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_recv(sqe, ops_[op].fd, nullptr, options_.buffer_size, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = kBufferGroup;
    io_uring_sqe_set_data64(sqe, op + 1);
  }

  // Without memory for a buffer the receive completes with -ENOMEM at the next wait().
  void submit_pool_recv(uint32_t op) {
    auto b = pool_.acquire();
    if (!b) {
      ready_nomem_.push_back(op);
      return;
    }
    ops_[op].pool_buffer = *b;
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_recv(sqe, ops_[op].fd, b->data, options_.buffer_size, 0);
    io_uring_sqe_set_data64(sqe, op + 1);
  }

  void arm_wake() {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_poll_add(sqe, wake_fd_, POLLIN);
    io_uring_sqe_set_data64(sqe, kWakeData);
  }

  void handle(const io_uring_cqe& cqe, std::vector<IoCompletion>& out) {
    uint64_t data = cqe.user_data;
    if (data == kIgnoreData) return;
    if (data == kWakeData) {
      uint64_t value;
      [[maybe_unused]] ssize_t n = ::read(wake_fd_, &value, sizeof value);
      arm_wake();
      return;
    }
    uint32_t index = static_cast<uint32_t>(data - 1);
    Op& o = ops_[index];
    IoCompletion c;
    c.token = o.token;
    c.op = o.op;
    c.result = cqe.res;
    switch (o.op) {
      case IoOp::Accept:
        c.more = (cqe.flags & IORING_CQE_F_MORE) != 0;
        if (!c.more) free_op(index);
        break;
      case IoOp::Recv:
        if (o.pool_buffer.valid()) {
          if (cqe.res > 0) {
            c.buffer = o.pool_buffer;
          } else {
            pool_.release(o.pool_buffer);
          }
        } else if (cqe.flags & IORING_CQE_F_BUFFER) {
          auto id = static_cast<uint32_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
          IoBuffer b{ring_memory_ + size_t{id} * options_.buffer_size, id};
          if (cqe.res > 0) {
            c.buffer = b;
          } else {
            release(b);
          }
        } else if (cqe.res == -ENOBUFS) {
          // Every ring buffer is lent out (many connections wait on slow peers): receive
          // into a pool buffer instead. Not an error; the caller never hears of it.
          submit_pool_recv(index);
          return;
        }
        free_op(index);
        break;
      case IoOp::Send:
      case IoOp::Connect:
        free_op(index);
        break;
    }
    out.push_back(c);
  }

  void flush_nomem(std::vector<IoCompletion>& out) {
    for (uint32_t index : ready_nomem_) {
      IoCompletion c;
      c.token = ops_[index].token;
      c.op = IoOp::Recv;
      c.result = -ENOMEM;
      out.push_back(c);
      free_op(index);
    }
    ready_nomem_.clear();
  }

  IoOptions options_;
  io_uring ring_{};
  bool ring_up_ = false;
  unsigned setup_flags_ = 0;
  int wake_fd_ = -1;
  // A deque: a connect's SQE points at its Op's address until the next submit, so adding
  // operations must never move the ones already there.
  std::deque<Op> ops_;
  std::vector<uint32_t> free_ops_;
  std::vector<uint32_t> ready_nomem_;  // receives that found no memory, reported at the next wait
  io_uring_buf_ring* buf_ring_ = nullptr;
  size_t buf_ring_bytes_ = 0;
  uint8_t* ring_memory_ = nullptr;
  size_t ring_memory_bytes_ = 0;
  BufferPool pool_;  // ids from ring_buffers up, so they never collide with ring buffer ids
};

}  // namespace

std::unique_ptr<IoLoop> make_io_uring_loop(const IoOptions& options, bool use_buffer_ring, std::string& error) {
  auto loop = std::make_unique<UringLoop>(options);
  if (!loop->init(use_buffer_ring, error)) return nullptr;
  return loop;
}

}  // namespace hafront::proxy
