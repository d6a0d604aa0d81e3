// Plain types of the data plane's view of the world.
#pragma once

#include <cstdint>

namespace hafront::proxy {

// Which I/O back-end a worker runs, chosen by a kernel probe at start-up.
enum class IoBackend : uint8_t { IoUring, Epoll };

const char* to_string(IoBackend);

}  // namespace hafront::proxy
