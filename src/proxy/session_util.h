// Small pure helpers both session kinds (tcp_session, http_session) use.
#pragma once

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <optional>

#include "proxy/balance.h"
#include "proxy/proxy_types.h"

namespace hafront::proxy {

// What a failed connect tells the control plane (a negated errno from the completion).
inline PassiveEventKind connect_failure_kind(int32_t error) noexcept {
  return error == -ECONNREFUSED ? PassiveEventKind::ConnectRefused
         : error == -ETIMEDOUT  ? PassiveEventKind::ConnectTimeout
                                : PassiveEventKind::ConnectError;
}

// A time-out `limit` (0: none) has run out since `since`.
inline bool expired(std::chrono::milliseconds limit, SteadyTime since, SteadyTime now) noexcept {
  return limit.count() > 0 && now - since >= limit;
}

// Moves `at` earlier to since + limit when that comes first (limit 0: no time-out).
inline void earliest(std::optional<SteadyTime>& at, std::chrono::milliseconds limit, SteadyTime since) noexcept {
  if (limit.count() <= 0) return;
  SteadyTime t = since + limit;
  if (!at || t < *at) at = t;
}

}  // namespace hafront::proxy
