#include "proxy/proxy_types.h"

namespace hafront::proxy {

const char* to_string(IoBackend b) { return b == IoBackend::IoUring ? "io_uring" : "epoll"; }

}  // namespace hafront::proxy
