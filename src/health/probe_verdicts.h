// The pure parts of the probes: what an answer means and how to say it. No I/O, no clock;
// the probes (probe_*.cc) gather the answer and call these, the tests call them directly.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config_types.h"
#include "health/probe.h"

namespace hafront::health {

// Limits on what a probe keeps of a target's answer.
inline constexpr size_t kMaxBodyBytes = 64 * 1024;   // HTTP body read, at most
inline constexpr size_t kMaxHeadBytes = 16 * 1024;   // HTTP status line + headers
inline constexpr size_t kMaxExcerpt = 256;           // Observation::body_excerpt
inline constexpr size_t kMaxExecOutput = 4 * 1024;   // exec output kept (the rest is drained)

struct Verdict {
  bool ok = false;
  std::string reason;
};

// The first kMaxExcerpt bytes of `body`, printable: tabs, line breaks and other control or
// non-ASCII bytes become spaces or '.', so it is safe in a terminal, a log line and JSON.
std::string body_excerpt(std::string_view body);

// `text` in double quotes, with '"' and '\' escaped and control bytes as \xNN, cut at
// `max` bytes of input with "..." after the closing quote: for quoting expectations and
// answers in reasons.
std::string quote(std::string_view text, size_t max = 80);

// ---- HTTP ------------------------------------------------------------------------------

// A field of a JSON body looked up by a JSON pointer.
struct JsonField {
  enum class Result : uint8_t { Found, Missing, NotJson };
  Result result = Result::NotJson;
  std::string text;       // Found: a string's value without quotes; other values as JSON text
  std::string json_text;  // Found: the value as JSON text (a string with its quotes)
  std::optional<double> number;  // Found: a number's value (compared by value as well)
  std::string error;      // NotJson: what the parser said
};
JsonField json_field(std::string_view body, std::string_view pointer);

// The verdict on one HTTP answer. expect_json compares the field's text (a string without
// its quotes, anything else as JSON text) with `equals`; a number also matches the same
// number written otherwise. `request` is "GET /v3" (for the reason); `truncated`
// means the body was longer than what was read (`body` is its first kMaxBodyBytes): the
// checks that can be decided on that prefix are (a status-only check passes, a substring
// or regex found in it passes), the others fail with "body larger than 64 KiB".
// Checks run in order status, expect_body, expect_body_regex, expect_json; the first
// failure is the reason. A pass says "HTTP 200 from GET /v3".
Verdict judge_http(const config::HttpCheck& check, std::string_view request, uint16_t status, std::string_view body,
                   bool truncated);

// ---- MySQL / Galera --------------------------------------------------------------------

// Builds the view from (name, value) rows of SHOW GLOBAL STATUS / SHOW GLOBAL VARIABLES
// (names compared ignoring case). Values that do not parse leave their field unset;
// unknown names are ignored.
GaleraView galera_view(const std::vector<std::pair<std::string, std::string>>& rows);

// The verdict on a view against `require`: every set field of `require` must hold, unset
// ones are not checked. A failure lists every unmet condition, "; "-separated:
// "wsrep_local_state 2 (Donor/Desynced), need 4; wsrep_desync is ON, need OFF". A pass
// says what it saw: "Synced, Primary, 3 nodes, last committed 1234" or "no wsrep,
// read_only OFF".
Verdict judge_galera(const GaleraView& view, const config::MysqlRequire& require);

// ---- exec ------------------------------------------------------------------------------

// The verdict on a finished command: exit 0 passes unless, with agent_output, the agent
// words of the first output line say down/fail/stopped. Fails: "exit 3: <first line>",
// "killed by signal 9", "agent says down: <message>". `exit_code` is the exit status,
// `signal` the signal that killed it (one of them is set). `agent` receives the parsed
// words when agent_output is set.
Verdict judge_exec(std::optional<int> exit_code, std::optional<int> signal, std::string_view output,
                   bool agent_output, std::optional<AgentWords>& agent);

// The first line of `output` (up to '\n' or '\r'), printable, trimmed, at most 200 bytes.
std::string first_line(std::string_view output);

}  // namespace hafront::health
