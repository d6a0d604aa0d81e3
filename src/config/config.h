// Loading and validating the configuration file.
//
// The loader reads one YAML file, checks it as a whole and returns either an immutable
// Config or every error it found, each with the file, line and column of the offending
// key or value. It never throws for bad input and never changes anything outside itself:
// a caller that gets errors keeps whatever config it was running.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_types.h"

namespace hafront::config {

// One finding, at a place in the file. line and column start at 1; 0 means "the file".
struct Diagnostic {
  enum class Severity : uint8_t { Error, Warning };
  Severity severity = Severity::Error;
  std::string file;
  int line = 0;
  int column = 0;
  std::string message;

  // "FILE:LINE:COL: message", or "FILE:LINE:COL: warning: message".
  std::string format() const;
};

struct LoadOptions {
  // Check that every secret file exists and is readable (its content is never read here).
  // Off only for the fuzzer, which must not touch the file system.
  bool check_secret_files = true;
  // Folder that relative paths (secrets, CA files) are resolved against. Defaults to the
  // folder of the config file; load_string() uses the current folder when empty.
  std::string base_dir;
};

struct LoadResult {
  std::shared_ptr<const Config> config;  // set only when there is no error
  std::vector<Diagnostic> diagnostics;   // errors and warnings, in file order

  bool ok() const { return config != nullptr; }
  size_t error_count() const;
};

// Files larger than this are refused before parsing.
inline constexpr size_t kMaxConfigBytes = 4 * 1024 * 1024;

// Reads and validates `path`.
LoadResult load_file(const std::string& path, const LoadOptions& options = {});

// Validates `text` as if it were the file `name` (tests, fuzzing, admin "check").
LoadResult load_string(std::string_view text, const std::string& name,
                       const LoadOptions& options = {});

}  // namespace hafront::config

namespace hafront::config {

// What changed between two configs, by section and name, for the reload log line and for
// the parts that apply a reload piece by piece.
struct SectionDiff {
  std::string section;  // "services", "vips", "checks", "fence_devices", "nodes"
  std::vector<std::string> added, removed, changed;
  bool empty() const { return added.empty() && removed.empty() && changed.empty(); }
};
std::vector<SectionDiff> diff(const Config& running, const Config& next);

// Changes a running daemon cannot apply without a restart, each as a sentence naming the
// key (cluster identity, mode, this node's entry, the admin socket). Empty when the new
// config can be applied by reload.
std::vector<std::string> restart_required(const Config& running, const Config& next,
                                          const std::string& node_name);

}  // namespace hafront::config
