// Logging set-up: spdlog to stderr in a form journald understands.
//
// When stderr is connected to the journal (systemd sets JOURNAL_STREAM), each line starts
// with the syslog priority in angle brackets ("<6>message") and carries no timestamp; the
// journal adds its own. Otherwise lines carry an ISO-8601 timestamp and the level name.
#pragma once

#include <spdlog/spdlog.h>

#include "config/config_types.h"

namespace hafront {

// Installs the process-wide logger. Safe to call again (reload changes the level).
void init_logging(config::LogLevel level);
void set_log_level(config::LogLevel level);

}  // namespace hafront
