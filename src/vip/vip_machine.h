// The VIP state machine: a pure function from (state, event, now) to the next state and the
// actions to carry out. It reads no clock and does no I/O; VipManager feeds it events and
// executes the actions. Keepalived's knobs (GARP count, interval, refresh) come from the
// VIP's config.
//
//  Released --Want--> Acquiring(probe) --ProbeClear--> Acquiring(add) --AddressAdded--> Held
//     ^                    |ProbeConflict: alert, retry later                          |
//     |                                                                      Unwant / LinkDown
//     +------AddressDeleted------ Releasing(delete) <------------------------------------+
//
// A held address deleted by someone else is re-added at once (no probe: it was ours) with an
// alert. A failed add or delete is retried every kRetryInterval while the decision stands.
#pragma once

#include "config/config_types.h"
#include "vip/vip_types.h"

namespace hafront::vip {

inline constexpr Duration kRetryInterval{1000};

StepResult step(const MachineState& state, const Event& event, const config::Vip& vip, Clock::time_point now);

}  // namespace hafront::vip
