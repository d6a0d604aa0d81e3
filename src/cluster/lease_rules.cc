#include "cluster/lease_rules.h"

#include <algorithm>
#include <functional>

namespace hafront::cluster::lease {

size_t acks_needed(size_t configured, size_t fenced) {
  size_t need = configured / 2;  // with this node: configured / 2 + 1, a majority
  return fenced >= need ? 0 : need - fenced;
}

std::optional<uint64_t> renewable_seq(std::vector<uint64_t> acks, size_t need) {
  if (need == 0 || acks.size() < need) return std::nullopt;
  std::sort(acks.begin(), acks.end(), std::greater<>());
  return acks[need - 1];
}

bool attestation_valid(std::optional<uint64_t> view, std::optional<uint64_t> sender_view_in_config, uint64_t seq,
                       uint64_t seq_since_change) {
  return view && sender_view_in_config && *view == *sender_view_in_config && seq >= seq_since_change;
}

std::set<std::string> freed(const std::map<uint32_t, std::optional<std::set<std::string>>>& attestations) {
  std::optional<std::set<std::string>> out;
  for (const auto& [by, seen] : attestations) {
    if (!seen) continue;
    if (!out) {
      out = *seen;
    } else {
      std::erase_if(*out, [&](const std::string& v) { return !seen->count(v); });
    }
  }
  return out.value_or(std::set<std::string>{});
}

}  // namespace hafront::cluster::lease
