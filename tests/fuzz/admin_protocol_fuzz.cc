// libFuzzer target: admin request parsing and reply decoding take arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "control/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  auto parsed = hafront::control::parse_request(line);
  if (!parsed.request && parsed.error.empty()) __builtin_trap();
  auto reply = hafront::control::decode_reply(line);
  (void)hafront::control::encode_reply(reply);
  return 0;
}
