// The writer of a single-writer service (Galera): which one server takes every connection.
// Pure: the monitor gathers each server's latest facts and calls choose_writer() after every
// change; the data plane is then told to send to exactly that server.
//
// Policy:
//  - eligible: the server is up as far as its state goes (not down, ejected, drained or in
//    maintenance), its latest check passed, and for a mysql check Galera says it may take
//    writes: wsrep_local_state 4 (Synced), wsrep_cluster_status Primary, not desynced,
//    not read_only. A server that reports no wsrep_ variable at all (plain MariaDB) needs
//    only to be writable (read_only off);
//  - the current writer stays while it is eligible, even when a "better" one appears (no
//    failback: moving writes is what breaks Galera's certification), and through brief
//    blips: while it stays usable it loses the role only once `fall` checks in a row found
//    it ineligible (an IST donor is Donor/Desynced for ~0.5 s and still takes writes; a
//    loaded Galera reports a spurious non-Primary now and then). A writer that goes down
//    (refused, ejected, failed its checks) loses it at once;
//  - a server replaces a writer only after `rise` eligible checks in a row, so the role
//    does not bounce between two flapping nodes (with no writer before, one suffices);
//  - a new writer is chosen only once every server has a verdict (the first checks all end
//    within fast_interval + timeout of start), so the choice at start sees every node;
//  - on failover the eligible server with the highest wsrep_last_committed wins (it has
//    seen the most of the history), ties going to configured order; backups only when no
//    other server is eligible;
//  - none eligible: no writer, and the reason lists why each server is not.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>

#include "health/probe.h"

namespace hafront::health {

struct WriterCandidate {
  std::string name;
  bool backup = false;
  bool usable = false;          // up as far as state goes
  std::string unusable_reason;  // why not, when !usable ("down: connect refused", "maint")
  std::optional<bool> last_ok;  // the latest check; unset: none yet
  std::string last_reason;      // the latest check's reason
  bool mysql = false;           // the service's check is a mysql check: Galera's rule applies
  std::optional<GaleraView> galera;  // the latest check's view, if any
  bool pending = false;         // no verdict yet (its first check has not completed)
  // Hysteresis (0: none): its checks in a row, up to the latest, that found it eligible /
  // ineligible, and the check's rise and fall.
  uint32_t eligible_streak = 0;
  uint32_t ineligible_streak = 0;
  uint32_t rise = 0;
  uint32_t fall = 0;
};

struct WriterChoice {
  std::optional<size_t> writer;  // index into the candidates
  bool changed = false;          // differs from the current writer
  std::string reason;            // why this one, or why none
};

// Why Galera would refuse writes on this node; empty when it may take them.
std::string why_not_writable(const GaleraView& g);

// Empty when the candidate may be the writer, otherwise why not.
std::string why_not_eligible(const WriterCandidate& c);

// `current`: the writer chosen before (by name), if any.
WriterChoice choose_writer(std::span<const WriterCandidate> candidates, const std::optional<std::string>& current);

}  // namespace hafront::health
