// Plain types of VIP ownership on this node.
#pragma once

#include <cstdint>

namespace hafront::vip {

// The life of a VIP on one node: released -> acquiring -> held -> releasing -> released.
enum class VipState : uint8_t { Released, Acquiring, Held, Releasing };

const char* to_string(VipState);

}  // namespace hafront::vip
