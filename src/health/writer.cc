#include "health/writer.h"

namespace hafront::health {

std::string why_not_writable(const GaleraView& g) {
  bool any_wsrep = g.local_state || g.cluster_status || g.ready || g.desync || g.last_committed || g.cluster_size;
  if (g.read_only && *g.read_only) return "read_only is ON";
  if (!any_wsrep) return "";  // a plain MariaDB server: writable is all it takes
  if (!g.local_state) return "no wsrep_local_state reported";
  if (*g.local_state != 4) {
    std::string comment = g.local_state_comment ? *g.local_state_comment : "";
    if (comment.empty()) {
      switch (*g.local_state) {
        case 1: comment = "Joining"; break;
        case 2: comment = "Donor/Desynced"; break;
        case 3: comment = "Joined"; break;
        default: comment = "not Synced"; break;
      }
    }
    return "wsrep_local_state " + std::to_string(*g.local_state) + " (" + comment + "), need 4 (Synced)";
  }
  if (!g.cluster_status) return "no wsrep_cluster_status reported";
  if (*g.cluster_status != "Primary") return "wsrep_cluster_status " + *g.cluster_status + ", need Primary";
  if (g.desync && *g.desync) return "wsrep_desync is ON";
  return "";
}

std::string why_not_eligible(const WriterCandidate& c) {
  if (!c.usable) return c.unusable_reason.empty() ? std::string("not up") : c.unusable_reason;
  if (!c.last_ok) return "not checked yet";
  if (!*c.last_ok) return c.last_reason.empty() ? std::string("its check fails") : c.last_reason;
  if (c.mysql) {
    if (!c.galera) return "its check reported no server status";
    return why_not_writable(*c.galera);
  }
  return "";
}

WriterChoice choose_writer(std::span<const WriterCandidate> candidates, const std::optional<std::string>& current) {
  WriterChoice out;
  std::optional<size_t> current_index;
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (current && candidates[i].name == *current) current_index = i;
  }
  if (current_index) {
    const WriterCandidate& c = candidates[*current_index];
    std::string why = why_not_eligible(c);
    if (why.empty()) {
      out.writer = current_index;
      out.reason = "writer since it was chosen (no failback)";
      return out;
    }
    if (c.usable && c.last_ok && c.ineligible_streak < c.fall) {
      out.writer = current_index;
      out.reason = "writer since it was chosen; its latest check: " + why + " (" + std::to_string(c.ineligible_streak) +
                   " of " + std::to_string(c.fall) + " in a row before it hands over)";
      return out;
    }
  }
  std::string pending;
  for (const auto& c : candidates) {
    if (c.pending) pending += (pending.empty() ? "" : ", ") + c.name;
  }
  if (!pending.empty()) {
    out.reason = "no writer yet: waiting for the first check of " + pending;
    out.changed = current.has_value();
    return out;
  }
  auto committed = [&](size_t i) -> uint64_t {
    const auto& g = candidates[i].galera;
    return g && g->last_committed ? *g->last_committed : 0;
  };
  std::string why_none;
  for (int pass = 0; pass < 2 && !out.writer; ++pass) {
    const bool want_backup = pass == 1;
    for (size_t i = 0; i < candidates.size(); ++i) {
      const WriterCandidate& c = candidates[i];
      if (c.backup != want_backup) continue;
      std::string why = why_not_eligible(c);
      if (why.empty() && current && c.eligible_streak < c.rise) {
        why = "eligible in " + std::to_string(c.eligible_streak) + " check(s) in a row, needs " +
              std::to_string(c.rise) + " to take over";
      }
      if (!why.empty()) {
        why_none += (why_none.empty() ? "" : "; ") + c.name + " " + why;
        continue;
      }
      // Strictly greater: ties keep the earlier server in configured order.
      if (!out.writer || committed(i) > committed(*out.writer)) out.writer = i;
    }
  }
  if (out.writer) {
    const WriterCandidate& w = candidates[*out.writer];
    const auto& g = w.galera;
    out.reason = g && g->last_committed ? "chosen: eligible with the highest wsrep_last_committed (" +
                                              std::to_string(*g->last_committed) + ")"
                                        : "chosen: the first eligible server in configured order";
    if (current && current_index) {
      out.reason += "; " + *current + " " + why_not_eligible(candidates[*current_index]);
    } else if (current) {
      out.reason += "; " + *current + " is no longer configured";
    }
  } else {
    out.reason = candidates.empty() ? "no eligible writer: no server" : "no eligible writer: " + why_none;
  }
  out.changed = (out.writer ? std::optional<std::string>(candidates[*out.writer].name) : std::nullopt) != current;
  return out;
}

}  // namespace hafront::health
