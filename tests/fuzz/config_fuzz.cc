// libFuzzer target: the config loader must turn any byte string into a Config or a list
// of diagnostics, never crash, hang or grow without bound.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hafront::config::LoadOptions options;
  options.check_secret_files = false;  // no file system access from the fuzzer
  options.base_dir = "/nonexistent";
  auto result = hafront::config::load_string(
      std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.yaml", options);
  // A result is either a config or at least one error.
  if (!result.ok() && result.error_count() == 0) __builtin_trap();
  for (const auto& d : result.diagnostics) (void)d.format();
  return 0;
}
