#include "fence/fence_types.h"

namespace hafront::fence {

const char* to_string(ExecStatus s) {
  switch (s) {
    case ExecStatus::Done: return "done";
    case ExecStatus::Timeout: return "timeout";
    case ExecStatus::NotInstalled: return "not-installed";
    case ExecStatus::Error: return "error";
  }
  return "?";
}

const char* to_string(Answer a) {
  switch (a) {
    case Answer::None: return "none";
    case Answer::Ok: return "ok";
    case Answer::Failed: return "failed";
    case Answer::On: return "on";
    case Answer::Off: return "off";
  }
  return "?";
}

const char* to_string(PowerState s) {
  switch (s) {
    case PowerState::Unknown: return "unknown";
    case PowerState::On: return "on";
    case PowerState::Off: return "off";
  }
  return "?";
}

}  // namespace hafront::fence
