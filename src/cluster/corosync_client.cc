#include "cluster/corosync_client.h"

#include <corosync/cpg.h>
#include <corosync/quorum.h>
#include <spdlog/spdlog.h>

#include <cstring>

namespace hafront::cluster {

namespace asio = boost::asio;

struct CorosyncClient::Impl {
  CorosyncClient* owner = nullptr;
  cpg_handle_t cpg = 0;
  quorum_handle_t quorum = 0;
  bool cpg_open = false;
  bool quorum_open = false;
  std::unique_ptr<asio::posix::stream_descriptor> cpg_fd;
  std::unique_ptr<asio::posix::stream_descriptor> quorum_fd;

  static LeaveReason reason(uint32_t r) {
    switch (r) {
      case CPG_REASON_LEAVE: return LeaveReason::Leave;
      case CPG_REASON_NODEDOWN: return LeaveReason::NodeDown;
      case CPG_REASON_PROCDOWN: return LeaveReason::ProcDown;
      default: return LeaveReason::Other;
    }
  }

  static CorosyncClient* self(cpg_handle_t h) {
    void* ctx = nullptr;
    cpg_context_get(h, &ctx);
    return static_cast<CorosyncClient*>(ctx);
  }

  // Nothing may unwind through corosync's C dispatch: every callback stops exceptions here.
  template <typename F>
  static void guarded(const char* what, F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      spdlog::error("error while handling a Corosync {}: {}", what, e.what());
    }
  }

  static void on_deliver(cpg_handle_t h, const cpg_name*, uint32_t nodeid, uint32_t pid, void* msg, size_t len) {
    CorosyncClient* c = self(h);
    if (c && c->cb_.message) guarded("message", [&] {
      c->cb_.message(CpgMember{nodeid, pid}, std::string(static_cast<const char*>(msg), len));
    });
  }

  static void on_confchg(cpg_handle_t h, const cpg_name*, const cpg_address* members, size_t n_members,
                         const cpg_address* left, size_t n_left, const cpg_address* joined, size_t n_joined) {
    CorosyncClient* c = self(h);
    if (!c || !c->cb_.membership) return;
    std::vector<CpgMember> m, j;
    std::vector<std::pair<CpgMember, LeaveReason>> l;
    for (size_t i = 0; i < n_members; ++i) m.push_back({members[i].nodeid, members[i].pid});
    for (size_t i = 0; i < n_left; ++i) l.push_back({{left[i].nodeid, left[i].pid}, reason(left[i].reason)});
    for (size_t i = 0; i < n_joined; ++i) j.push_back({joined[i].nodeid, joined[i].pid});
    guarded("membership change", [&] { c->cb_.membership(m, l, j); });
  }

  static void on_totem(cpg_handle_t h, cpg_ring_id, uint32_t n, const uint32_t* nodes) {
    CorosyncClient* c = self(h);
    if (!c || !c->cb_.ring_changed) return;
    std::vector<uint32_t> ring(nodes, nodes + n);
    guarded("ring change", [&] { c->cb_.ring_changed(ring); });
  }

  static void on_quorum(quorum_handle_t h, uint32_t quorate, uint64_t, uint32_t, uint32_t*) {
    const void* ctx = nullptr;
    quorum_context_get(h, &ctx);
    auto* c = static_cast<CorosyncClient*>(const_cast<void*>(ctx));
    if (c && c->cb_.quorum) guarded("quorum change", [&] { c->cb_.quorum(quorate != 0); });
  }

  void close() {
    if (cpg_fd) {
      cpg_fd->release();  // corosync's library owns the descriptor
      cpg_fd.reset();
    }
    if (quorum_fd) {
      quorum_fd->release();
      quorum_fd.reset();
    }
    if (cpg_open) cpg_finalize(cpg);
    if (quorum_open) quorum_finalize(quorum);
    cpg_open = quorum_open = false;
  }
};

CorosyncClient::CorosyncClient(asio::io_context& io, std::string group, Callbacks callbacks)
    : io_(io), group_(std::move(group)), cb_(std::move(callbacks)), impl_(std::make_unique<Impl>()), retry_(io) {
  impl_->owner = this;
}

CorosyncClient::~CorosyncClient() { stop(); }

void CorosyncClient::start() {
  stopped_ = false;
  connect();
}

void CorosyncClient::stop() {
  stopped_ = true;
  retry_.cancel();
  if (impl_->cpg_open && connected_) {
    cpg_name name{};
    name.length = static_cast<uint32_t>(group_.size());
    std::memcpy(name.value, group_.data(), group_.size());
    cpg_leave(impl_->cpg, &name);
  }
  impl_->close();
  connected_ = false;
}

void CorosyncClient::connect() {
  if (stopped_) return;
  cpg_model_v1_data_t model{};
  model.model = CPG_MODEL_V1;
  model.cpg_deliver_fn = &Impl::on_deliver;
  model.cpg_confchg_fn = &Impl::on_confchg;
  model.cpg_totem_confchg_fn = &Impl::on_totem;
  if (cs_error_t e = cpg_model_initialize(&impl_->cpg, CPG_MODEL_V1, reinterpret_cast<cpg_model_data_t*>(&model), this);
      e != CS_OK) {
    return fail("cannot connect to Corosync's CPG service (error " + std::to_string(e) + ")");
  }
  impl_->cpg_open = true;
  quorum_callbacks_t qcb{};
  qcb.quorum_notify_fn = &Impl::on_quorum;
  uint32_t quorum_type = 0;
  if (cs_error_t e = quorum_initialize(&impl_->quorum, &qcb, &quorum_type); e != CS_OK) {
    return fail("cannot connect to Corosync's quorum service (error " + std::to_string(e) + ")");
  }
  impl_->quorum_open = true;
  quorum_context_set(impl_->quorum, this);
  cpg_name name{};
  if (group_.size() >= sizeof name.value) return fail("CPG group name too long");
  name.length = static_cast<uint32_t>(group_.size());
  std::memcpy(name.value, group_.data(), group_.size());
  if (cs_error_t e = cpg_join(impl_->cpg, &name); e != CS_OK) {
    return fail("cannot join CPG group " + group_ + " (error " + std::to_string(e) + ")");
  }
  unsigned int local = 0;
  cpg_local_get(impl_->cpg, &local);
  int cfd = -1, qfd = -1;
  cpg_fd_get(impl_->cpg, &cfd);
  quorum_fd_get(impl_->quorum, &qfd);
  impl_->cpg_fd = std::make_unique<asio::posix::stream_descriptor>(io_, cfd);
  impl_->quorum_fd = std::make_unique<asio::posix::stream_descriptor>(io_, qfd);
  if (cs_error_t e = quorum_trackstart(impl_->quorum, CS_TRACK_CHANGES | CS_TRACK_CURRENT); e != CS_OK) {
    return fail("cannot track quorum (error " + std::to_string(e) + ")");
  }
  connected_ = true;
  backoff_ = std::chrono::milliseconds(100);
  local_node_ = local;
  spdlog::info("connected to Corosync as node {}, joined CPG group {}", local_node_, group_);
  if (cb_.connected) cb_.connected(local_node_);
  wait_cpg();
  wait_quorum();
}

void CorosyncClient::fail(const std::string& why) {
  bool was = connected_;
  impl_->close();
  connected_ = false;
  if (was) {
    spdlog::error("lost Corosync: {}", why);
  } else {
    spdlog::warn("{}; retrying in {} ms", why, backoff_.count());
  }
  if (cb_.disconnected) cb_.disconnected(why);
  schedule_reconnect();
}

void CorosyncClient::schedule_reconnect() {
  if (stopped_) return;
  retry_.expires_after(backoff_);
  backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(2000));
  retry_.async_wait([this](boost::system::error_code ec) {
    if (!ec) connect();
  });
}

// Waits for `fd` to be readable, then dispatches the service's callbacks; again until the
// service closes. A dispatch error means Corosync went away.
void CorosyncClient::wait_service(asio::posix::stream_descriptor* fd, const bool* open, const char* what,
                                  std::function<int()> dispatch) {
  if (!fd) return;
  fd->async_wait(asio::posix::stream_descriptor::wait_read, [this, fd, open, what, dispatch](boost::system::error_code ec) {
    if (ec == asio::error::operation_aborted || !*open) return;
    if (ec) return fail(std::string(what) + " descriptor error: " + ec.message());
    int e = dispatch();
    if (e != CS_OK && e != CS_ERR_TRY_AGAIN) return fail(std::string(what) + " dispatch failed (error " + std::to_string(e) + ")");
    if (*open) wait_service(fd, open, what, dispatch);
  });
}

void CorosyncClient::wait_cpg() {
  wait_service(impl_->cpg_fd.get(), &impl_->cpg_open, "CPG", [this] { return cpg_dispatch(impl_->cpg, CS_DISPATCH_ALL); });
}

void CorosyncClient::wait_quorum() {
  wait_service(impl_->quorum_fd.get(), &impl_->quorum_open, "quorum",
               [this] { return quorum_dispatch(impl_->quorum, CS_DISPATCH_ALL); });
}

bool CorosyncClient::send(const std::string& payload) {
  if (!connected_) return false;
  iovec iov{const_cast<char*>(payload.data()), payload.size()};
  cs_error_t e = cpg_mcast_joined(impl_->cpg, CPG_TYPE_AGREED, &iov, 1);
  if (e == CS_ERR_TRY_AGAIN) return false;
  if (e != CS_OK) {
    asio::post(io_, [this, e] { fail("CPG send failed (error " + std::to_string(e) + ")"); });
    return false;
  }
  return true;
}

}  // namespace hafront::cluster
