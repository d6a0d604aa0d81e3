#include "vip/vip_types.h"

namespace hafront::vip {

const char* to_string(VipState s) {
  switch (s) {
    case VipState::Released: return "released";
    case VipState::Acquiring: return "acquiring";
    case VipState::Held: return "held";
    case VipState::Releasing: return "releasing";
  }
  return "?";
}

}  // namespace hafront::vip
