// Plain types of fencing results. A fence run has two axes, as in Pacemaker: how the
// execution went (did the agent run to completion in time?), and what the agent answered
// (success, failure, or a power state).
#pragma once

#include <cstdint>

namespace hafront::fence {

// How the run went.
enum class ExecStatus : uint8_t {
  Done,          // the agent ran and exited with a code its API defines
  Timeout,       // killed (whole process group) at the time-out
  NotInstalled,  // no such agent in the agent folders
  Error,         // could not start, a secret file is unreadable, killed by a signal, an exit
                 // code outside the agent API, or output that contradicts the exit code
};

// What the agent answered (meaningful only with ExecStatus::Done).
enum class Answer : uint8_t {
  None,
  Ok,      // off/on/reboot/monitor/metadata/list: exit 0
  Failed,  // exit 1: the agent could not do it (device unreachable, login denied, refused)
  On,      // status: exit 0
  Off,     // status: exit 2
};

enum class PowerState : uint8_t { Unknown, On, Off };

const char* to_string(ExecStatus);
const char* to_string(Answer);
const char* to_string(PowerState);

}  // namespace hafront::fence
