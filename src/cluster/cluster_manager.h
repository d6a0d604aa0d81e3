// The cluster part of hafrontd in corosync mode: keeps the replicated table from CPG
// messages, runs decide() on it, and tells this node which VIPs to hold.
//
// Protocol (JSON messages in CPG's agreed order; every member applies the same messages
// in the same order, so every member has the same table):
//   state   {node, version, digest, standby, servable[], holding[], ...}  on change, after
//                                  every assign and every heartbeat
//   assign  {vip, node}            ownership change (node 0: nobody); sent only by the coordinator (the
//                                  quorate member with the lowest id) and only when
//                                  decide() says so. The table changes only through these,
//                                  so two members of a partition never both own a VIP.
//   fenced  {node, by, level, devices[], requested, started, finished, delay, rounds}
//                                  proof that a lost node is down: a fence the executor ran
//                                  and confirmed, or (by "operator") `hafrontctl fence-confirm`
//   fence_failed {node, by, reason, ...}  a fence request that ran out of levels and time;
//                                  every member records it and raises the alert
//   fence_request {node}           an operator's `hafrontctl fence NODE`
//
// Fencing: the executor for a target is the lowest-id member of the quorate partition that
// is alive, runs the partition's config and is not the target (for a lost node, that is
// the coordinator). It fences the nodes the plan names, and targets of fence_request,
// through the Callbacks (src/fence runs the agents), after a fence race delay, and
// multicasts the outcome; only a `fenced` message makes a lost node proven down.
//   silent  {node}                 a member whose daemon stopped heartbeating while its
//                                  Corosync stays: from then on it is lost uncleanly
//   standby {node, on}             ask a node to enter or leave standby (it advertises it)
//   ack     {acks}                 at once on delivering a state from a node holding a leased
//                                  VIP: speeds up its renewal (state messages carry acks too)
//   lease_expired {node, seq, view}  an attestation: this member has not delivered a state
//                                  from `node` for lease + margin of its own clock
//
// Leases (doc/lease.md; the model is model/lease.pml). Every state carries a sequence
// number and `acks`: the last seq this node delivered from each member. A node's kernel
// lease is renewed to send_time(k) + lease once enough other members acknowledged its
// state k that they and it form a majority of the configured nodes (nodes proven down by
// a fence count); only while connected, quorate and not silent; expired at once on quorum
// loss. The survivors of a lost holder each attest once lease + margin have passed on
// their own clock since they last delivered its state; when every other live member's
// attestation is in (ordered after the lost node's last state in this membership, sent in
// this membership), the node's leased VIPs are free, and it is still fenced.
//   sync    {version, owners, proven[], silent[], freed, may_hold, history[]}  after every
//                                  membership change each
//                                  member offers its table; once every member's offer is
//                                  in, all adopt the highest version (the side that kept
//                                  quorum, which is the side that could assign)
//
// This node holds VIP v only while: connected to Corosync, quorate, synced, the table
// names it the owner, and no other node may hold v (release before acquire). A node may
// hold v when its latest state says so, or when it was assigned v, or was the owner an
// assign of v replaced, and has not yet sent a state at this node's table version (it may
// still act on the assign that made it the owner); a node lost that
// way keeps blocking v until it is proven down (fenced) or its lease provably ran out.
// Quorum loss or a lost Corosync connection releases everything at once.
// doc/lease-safety.md has the argument; model/lease.pml models it (that doc says how far
// the model check goes).
#pragma once

#include <boost/asio.hpp>
#include <boost/json/object.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/cluster_types.h"
#include "cluster/corosync_client.h"
#include "cluster/placement.h"
#include "config/config_types.h"

namespace hafront::cluster {

class ClusterManager {
 public:
  struct Callbacks {
    // The decision for this node: hold (true) or release (false) each VIP.
    std::function<void(const std::string& vip, bool hold)> want;
    std::function<void(const std::string& message)> alert;
    // Another node asked this one to enter (true) or leave (false) standby.
    std::function<void(bool standby)> standby_requested;
    // Start fencing a node after `delay`; the outcome comes back through fence_finished().
    // False if it cannot start (already running).
    std::function<bool(const std::string& node, std::chrono::milliseconds delay)> fence_start;
    // Stop fencing a node (it came back, was proven down otherwise, or this node may no
    // longer fence); no outcome follows.
    std::function<void(const std::string& node)> fence_cancel;
    // The kernel lease of this node's leased VIPs now runs until `expiry_ns`
    // (CLOCK_BOOTTIME); 0: expire them now.
    std::function<void(uint64_t expiry_ns)> lease;
  };

  ClusterManager(boost::asio::io_context& io, std::shared_ptr<const config::Config> config, uint32_t self_id,
                 Callbacks callbacks);
  ~ClusterManager();

  void start();
  // Graceful stop: the caller has released every VIP; announce it and leave the group.
  void stop();

  // A new config (reload): policy and digest change; nodes and name cannot (restart).
  void reconfigure(std::shared_ptr<const config::Config> config);

  // What this node advertises.
  void set_standby(bool standby);
  void set_servable(const std::string& vip, bool servable);
  void set_holding(const std::string& vip, bool holding);
  // The VIPs this node gates with a lease (driver lease in effect): a survivor may take
  // them over once this node's lease provably ran out.
  void set_leased(const std::string& vip, bool leased);

  // Asks `node_name` to enter or leave standby (it applies it to itself). Empty on success.
  std::string request_standby(const std::string& node_name, bool standby);

  // An operator confirms that a node is down (it was powered off by hand).
  std::string fence_confirm(const std::string& node_name);
  // An operator asks the partition to fence a node now (`hafrontctl fence NODE`).
  std::string request_fence(const std::string& node_name);
  // The executor's outcome of a fence started through Callbacks::fence_start.
  void fence_finished(const FenceEvent& outcome);
  // Every fence this node learnt of, oldest first (bounded).
  const std::deque<FenceEvent>& fence_history() const { return history_; }

  struct Snapshot {
    bool connected = false;
    bool quorate = false;
    std::optional<uint32_t> coordinator;
    std::vector<NodeState> nodes;
    std::map<std::string, std::string> owners;   // VIP -> node name
    std::map<std::string, std::string> reasons;  // VIP -> why, from the latest plan
    std::vector<std::string> fence;              // nodes the plan wants fenced
    std::vector<std::string> alerts;             // the plan's alerts
    std::vector<std::string> fencing;            // fences this node is running now
    uint64_t lease_until_ns = 0;                 // this node's lease (CLOCK_BOOTTIME), 0: none
  };
  Snapshot snapshot() const;

 private:
  struct Peer {
    uint32_t id = 0;
    std::string name;
    bool member = false;
    bool silent = false;
    bool proven_down = false;
    Departure departure = Departure::None;
    bool daemon_died = false;  // it left the group because its daemon died (its node stays)
    bool seen_state = false;
    std::string digest;
    bool standby = false;
    std::set<std::string> servable;
    std::set<std::string> holding;
    // The VIPs it may hold: what its latest state said, plus VIPs assigned to it since a
    // state of it at this node's table version (it may act on an assign it has seen while
    // a later one is on its way). Kept when it leaves; learnt from offers by joiners.
    std::set<std::string> may_hold;
    std::chrono::steady_clock::time_point last_heard{};
    // Leases.
    uint64_t last_seq = 0;          // the seq of its latest state delivered here
    uint64_t seq_since_change = 0;  // the same, delivered since the last membership change (0: none)
    std::optional<uint64_t> view_in_config;  // its view counter, from a state sent in this membership
    std::chrono::steady_clock::time_point last_state{};  // when its latest state was delivered;
                                                         // moved forward when nothing could be known
    std::optional<uint64_t> acked;  // its ack of this node's seq, since the last membership change
    std::set<std::string> leased;   // VIPs it gates with a lease (its latest state)
    // Members whose valid lease_expired about it is in, with the VIPs each saw it lease
    // (nullopt: that member has not seen its state since it joined).
    std::map<uint32_t, std::optional<std::set<std::string>>> attested_by;
    bool lease_expired = false;     // proof complete: its leases ran out
    std::set<std::string> freed;    // the VIPs that proof freed
    uint64_t attested_seq = 0;      // what this node attested about it, in which view
    uint64_t attested_view = 0;
    bool attested = false;
  };

  void on_connected(uint32_t node);
  void on_disconnected(const std::string& why);
  void on_message(const CpgMember& from, const std::string& payload);
  void on_membership(const std::vector<CpgMember>& members, const std::vector<std::pair<CpgMember, LeaveReason>>& left,
                     const std::vector<CpgMember>& joined);
  void on_quorum(bool quorate);

  void send_state();
  void send_sync();
  std::map<uint32_t, std::set<std::string>> vips_by_node(const boost::json::object& o, std::string_view key) const;
  void heartbeat();
  void check_liveness();
  void evaluate();
  View view() const;
  Policy policy() const;
  // The partition's config digest: the one most members advertise (ties: the lowest
  // id's). Computed from ordered state messages, so every member gets the same answer.
  std::string cluster_digest() const;
  bool config_match(const Peer& p) const;
  std::optional<uint32_t> coordinator_id() const;
  bool coordinator() const;
  Peer* peer(uint32_t id);
  void release_all(const std::string& why);
  // Fencing: which node executes a fence of `target`, and starting/stopping this node's.
  std::optional<uint32_t> fence_executor(uint32_t target) const;
  // able: may start fences; keep: may go on with those running.
  void drive_fencing(bool able, bool keep);
  std::chrono::milliseconds fence_delay(uint32_t target) const;
  void record(FenceEvent e);
  // An entry from another member's table offer: added in time order unless known.
  void merge_history(FenceEvent e);
  static constexpr size_t kHistory = 200;      // entries kept
  static constexpr size_t kSyncedHistory = 32; // entries carried by a table offer
  void flush_outbox();
  // Leases: this node's renewal, attestations about others, and the proof.
  void read_acks(Peer& sender, const boost::json::object& o);
  void try_renew();
  void expire_lease();
  void check_leases();
  void on_lease_expired(Peer& sender, const boost::json::object& o);
  void on_ring_changed(const std::vector<uint32_t>& ring);
  void declare_silent(Peer& p, const std::string& why);
  uint64_t send_time(uint64_t seq) const;
  boost::json::object acks() const;

  boost::asio::io_context& io_;
  std::shared_ptr<const config::Config> config_;
  uint32_t self_;
  Callbacks cb_;
  std::unique_ptr<CorosyncClient> corosync_;
  boost::asio::steady_timer heartbeat_timer_;

  std::map<uint32_t, Peer> peers_;  // every configured node
  bool quorate_ = false;
  bool synced_ = false;
  std::set<uint32_t> sync_from_;  // members whose offer arrived since the last change
  struct Offer {
    uint64_t version = 0;
    uint32_t from = 0;
    std::map<std::string, uint32_t> owners;
    std::set<uint32_t> proven, silent;
    std::map<uint32_t, std::set<std::string>> freed;
  };
  std::optional<Offer> best_offer_;
  uint64_t version_ = 0;
  std::map<std::string, uint32_t> owners_;
  std::map<std::string, uint32_t> pending_assign_;  // sent, not yet delivered
  Plan plan_;

  bool standby_ = false;
  std::set<std::string> servable_;
  std::set<std::string> holding_;
  std::map<std::string, bool> wanted_;  // last decision given to the VIP manager
  bool stopping_ = false;

  std::set<uint32_t> manual_fence_;   // fence_request targets not yet fenced
  std::set<uint32_t> fencing_;        // fences this node runs now
  std::map<uint32_t, std::chrono::steady_clock::time_point> fence_retry_at_;  // after a failure
  std::set<uint32_t> fence_failure_alerted_;
  std::deque<FenceEvent> history_;
  std::deque<std::string> outbox_;    // fence reports Corosync refused for now; sent again

  uint64_t seq_ = 0;                  // of this node's latest state message
  std::deque<std::pair<uint64_t, uint64_t>> sent_;  // (seq, CLOCK_BOOTTIME ns at send), bounded
  uint64_t lease_until_ = 0;
  std::chrono::steady_clock::time_point own_delivered_{};  // this node's latest state, delivered back
  uint64_t view_ = 0;                 // membership changes processed (a local counter)
  std::set<std::string> leased_;
  boost::asio::steady_timer lease_timer_;
};

}  // namespace hafront::cluster
