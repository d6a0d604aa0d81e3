// Plain types of fencing results. A fence run has two axes, as in Pacemaker: how the
// execution went, and what the agent answered.
#pragma once

#include <cstdint>

namespace hafront::fence {

enum class ExecStatus : uint8_t { Done, Timeout, NotInstalled, Error };
enum class PowerState : uint8_t { Unknown, On, Off };

const char* to_string(ExecStatus);
const char* to_string(PowerState);

}  // namespace hafront::fence
