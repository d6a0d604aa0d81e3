// HAProxy agent-check words: what an exec check with agent_output, or an agent, says about
// its server in one line of text. A pure parser: it never fails, it ignores what it does not
// understand, and bad input changes nothing but its own result.
//
// The line holds words separated by spaces, tabs or commas, in any order, case ignored
// (HAProxy's configuration manual, "agent-check"):
//   up, ready           the server may take traffic (state Up)
//   drain               no new connections (state Drain); "0%" alone is a weight, not drain
//   maint               administratively off (state Maint)
//   down, fail, failed, stopped
//                       the server is down (state Down)
//   N%                  weight, 0-100 percent of the configured one
//   #text               a message: the rest of the line after '#', trimmed
// Several state words: the strongest wins, down > maint > drain > up, so "up maint" is
// maint and "drain, down" is down (HAProxy keeps an operational and an administrative
// state; we fold them into one). Unknown words, out-of-range percentages and anything after
// the first line break are ignored.
#pragma once

#include <string_view>

#include "health/probe.h"

namespace hafront::health {

// Only the first kMaxAgentLine bytes of a line are read.
inline constexpr size_t kMaxAgentLine = 512;

AgentWords parse_agent_words(std::string_view line);

}  // namespace hafront::health
