// Membership, messages and quorum from Corosync: one CPG group (totally ordered delivery
// of messages and membership changes within a partition) and the quorum service, their
// file descriptors on the control loop. If Corosync goes away (killed, restarted) the
// client reports it at once, and reconnects with back-off as a fresh member.
#pragma once

#include <boost/asio.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace hafront::cluster {

// Why a member left the CPG group (corosync's CPG_REASON_*).
enum class LeaveReason : uint8_t {
  Leave,     // the process left the group on purpose
  NodeDown,  // the node dropped out of the membership (crash, partition)
  ProcDown,  // the process died while its node's Corosync stayed
  Other,
};

struct CpgMember {
  uint32_t node = 0;
  uint32_t pid = 0;
  bool operator==(const CpgMember&) const = default;
};

class CorosyncClient {
 public:
  struct Callbacks {
    std::function<void(uint32_t local_node)> connected;
    std::function<void(const std::string& why)> disconnected;
    std::function<void(const CpgMember& from, const std::string& payload)> message;
    std::function<void(const std::vector<CpgMember>& members, const std::vector<std::pair<CpgMember, LeaveReason>>& left,
                       const std::vector<CpgMember>& joined)>
        membership;
    std::function<void(bool quorate)> quorum;
    // The totem ring was re-formed (token lost, node joined or left), even when the
    // group's membership stayed the same: nothing was delivered while it re-formed.
    // `nodes`: the ring's members.
    std::function<void(const std::vector<uint32_t>& nodes)> ring_changed;
  };

  CorosyncClient(boost::asio::io_context& io, std::string group, Callbacks callbacks);
  ~CorosyncClient();
  CorosyncClient(const CorosyncClient&) = delete;
  CorosyncClient& operator=(const CorosyncClient&) = delete;

  // Connects now; on failure retries with back-off (100 ms doubling to 2 s).
  void start();
  void stop();

  // Multicasts to the group in total (agreed) order. False when not connected or when
  // Corosync's queue is full (the caller sends again on its next heartbeat).
  bool send(const std::string& payload);

  bool connected() const { return connected_; }
  uint32_t local_node() const { return local_node_; }

  // Called by the C callbacks; not for users.
  struct Impl;

 private:
  void connect();
  void fail(const std::string& why);
  void schedule_reconnect();
  void wait_cpg();
  void wait_quorum();
  void wait_service(boost::asio::posix::stream_descriptor* fd, const bool* open, const char* what,
                    std::function<int()> dispatch);

  boost::asio::io_context& io_;
  std::string group_;
  Callbacks cb_;
  std::unique_ptr<Impl> impl_;
  boost::asio::steady_timer retry_;
  std::chrono::milliseconds backoff_{100};
  bool connected_ = false;
  bool stopped_ = false;
  uint32_t local_node_ = 0;
};

}  // namespace hafront::cluster
