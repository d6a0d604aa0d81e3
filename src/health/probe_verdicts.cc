#include "health/probe_verdicts.h"

// Bound Boost.Regex's backtracking (see regex_found()). Only this file includes Boost.Regex;
// another file that does must define the same value (one definition of its templates).
// (Boost casts the value C-style where it uses it: no warning for that here.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#define BOOST_REGEX_MAX_STATE_COUNT 1000000
#include <boost/regex.hpp>
#pragma GCC diagnostic pop

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>

#include "health/agent_words.h"

namespace hafront::health {

namespace {

constexpr size_t kMaxLine = 200;

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
  });
}

std::optional<uint64_t> parse_u64(std::string_view s) {
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc{} || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return n;
}

std::optional<int> parse_int(std::string_view s) {
  int n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc{} || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return n;
}

// MariaDB shows booleans as ON/OFF; accept the other spellings a variable may have.
std::optional<bool> parse_bool(std::string_view s) {
  for (std::string_view t : {"ON", "1", "TRUE", "YES"}) {
    if (iequals(s, t)) return true;
  }
  for (std::string_view f : {"OFF", "0", "FALSE", "NO"}) {
    if (iequals(s, f)) return false;
  }
  return std::nullopt;
}

const char* on_off(bool b) { return b ? "ON" : "OFF"; }

// Galera's names for wsrep_local_state, for when the server sent no comment.
std::string state_name(int state) {
  switch (state) {
    case 0: return "Initialized";
    case 1: return "Joining";
    case 2: return "Donor/Desynced";
    case 3: return "Joined";
    case 4: return "Synced";
    default: return "state " + std::to_string(state);
  }
}

std::string shorten(std::string s, size_t max) {
  if (s.size() > max) {
    s.resize(max);
    s += "...";
  }
  return s;
}

// expect_body_regex, on at most the first kMaxBodyBytes of the body, with Boost.Regex
// rather than std::regex. Measured here (libstdc++ 12, 8 MiB stack): std::regex_search
// recurses once per input byte and retries at every start, so `.*c` on 64 KiB of 'a'
// overflows the stack (a crash of the daemon) and `(a|b)*c` takes 0.15 s on 1 KiB and
// overflows at 16 KiB; its __polynomial executor does not overflow but takes minutes.
// Boost.Regex (header-only, the Boost we build with) matches without recursion, with its
// backtracking state bounded (BOOST_REGEX_MAX_STATE_COUNT, lowered above from 10^8) and its
// memory bounded (BOOST_REGEX_MAX_BLOCKS): a pathological pattern against a hostile body
// throws after at most ~0.5 s instead, and that is a failed check, not a crash. Options
// give std::regex's ECMAScript meaning, which the loader validated: '^'/'$' at the ends of
// the body only, '.' not matching line breaks.
bool regex_found(const std::string& pattern, std::string_view body, std::string& error) {
  try {
    boost::regex re(pattern, boost::regex::ECMAScript | boost::regex::no_mod_m);
    return boost::regex_search(body.begin(), body.end(), re, boost::match_not_dot_newline);
  } catch (const std::exception& e) {
    error = e.what();
    if (error.size() > 120) error = error.substr(0, error.find('.') == std::string::npos ? 120 : error.find('.'));
    return false;
  }
}

// A number field also equals a text that is the same number written otherwise ("3.0" for
// 3, "1e3" for 1000).
bool same_number(const std::optional<double>& number, const std::string& text) {
  if (!number || text.empty()) return false;
  double want = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), want);
  return ec == std::errc{} && end == text.data() + text.size() && want == *number;
}

}  // namespace

std::string body_excerpt(std::string_view body) {
  std::string out;
  size_t n = std::min(body.size(), kMaxExcerpt);
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    auto c = static_cast<unsigned char>(body[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else if (c == '\t' || c == '\n' || c == '\r') {
      out += ' ';
    } else {
      out += '.';
    }
  }
  return out;
}

std::string quote(std::string_view text, size_t max) {
  std::string out = "\"";
  size_t n = std::min(text.size(), max);
  for (size_t i = 0; i < n; ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  out += '"';
  if (text.size() > max) out += "...";
  return out;
}

JsonField json_field(std::string_view body, std::string_view pointer) {
  JsonField f;
  boost::json::error_code ec;
  boost::json::parse_options opts;
  opts.max_depth = 64;
  boost::json::value doc = boost::json::parse(boost::json::string_view(body.data(), body.size()), ec, {}, opts);
  if (ec) {
    f.result = JsonField::Result::NotJson;
    f.error = ec.message();
    return f;
  }
  boost::json::error_code pec;
  const boost::json::value* v = doc.find_pointer(boost::json::string_view(pointer.data(), pointer.size()), pec);
  if (!v) {
    f.result = JsonField::Result::Missing;
    return f;
  }
  f.result = JsonField::Result::Found;
  if (v->is_double()) {
    // Boost.JSON writes doubles as 1.5E0; the shortest round-trip text is what a body says.
    char buf[32];
    auto res = std::to_chars(buf, buf + sizeof buf, v->get_double());
    f.json_text.assign(buf, res.ptr);
  } else {
    f.json_text = boost::json::serialize(*v);
  }
  if (v->is_number()) f.number = v->to_number<double>();
  f.text = v->is_string() ? std::string(v->get_string()) : f.json_text;
  return f;
}

Verdict judge_http(const config::HttpCheck& check, std::string_view request, uint16_t status, std::string_view body,
                   bool truncated) {
  const std::string seen = "HTTP " + std::to_string(status) + " from " + std::string(request);
  if (std::find(check.expect_status.begin(), check.expect_status.end(), status) == check.expect_status.end()) {
    return {false, seen};
  }
  const std::string too_big = "body larger than 64 KiB";
  if (check.expect_body && body.find(*check.expect_body) == std::string_view::npos) {
    if (truncated) return {false, too_big + ": its first 64 KiB lack " + quote(*check.expect_body)};
    return {false, "body lacks " + quote(*check.expect_body)};
  }
  if (check.expect_body_regex) {
    std::string error;
    bool found = regex_found(*check.expect_body_regex, body.substr(0, kMaxBodyBytes), error);
    if (!error.empty()) {
      return {false, "body regex /" + shorten(*check.expect_body_regex, 80) + "/ could not be matched: " + error};
    }
    if (!found) {
      if (truncated) return {false, too_big + ": its first 64 KiB do not match /" + shorten(*check.expect_body_regex, 80) + "/"};
      return {false, "body does not match /" + shorten(*check.expect_body_regex, 80) + "/"};
    }
  }
  if (check.expect_json) {
    const auto& je = *check.expect_json;
    if (truncated) return {false, too_big + ": cannot check JSON " + je.field};
    JsonField f = json_field(body, je.field);
    switch (f.result) {
      case JsonField::Result::NotJson:
        return {false, "body is not JSON (" + f.error + "), want " + je.field + " = " + quote(je.equals)};
      case JsonField::Result::Missing:
        return {false, "JSON " + je.field + " is missing, want " + quote(je.equals)};
      case JsonField::Result::Found:
        if (f.text != je.equals && !same_number(f.number, je.equals)) {
          return {false, "JSON " + je.field + " is " + shorten(f.json_text, 80) + ", want " + quote(je.equals)};
        }
        break;
    }
  }
  return {true, seen};
}

GaleraView galera_view(const std::vector<std::pair<std::string, std::string>>& rows) {
  GaleraView v;
  for (const auto& [name, value] : rows) {
    if (iequals(name, "wsrep_local_state")) {
      v.local_state = parse_int(value);
    } else if (iequals(name, "wsrep_local_state_comment")) {
      v.local_state_comment = shorten(value, 64);
    } else if (iequals(name, "wsrep_cluster_status")) {
      v.cluster_status = shorten(value, 64);
    } else if (iequals(name, "wsrep_ready")) {
      v.ready = parse_bool(value);
    } else if (iequals(name, "wsrep_desync")) {
      v.desync = parse_bool(value);
    } else if (iequals(name, "wsrep_last_committed")) {
      v.last_committed = parse_u64(value);
    } else if (iequals(name, "wsrep_cluster_size")) {
      v.cluster_size = parse_u64(value);
    } else if (iequals(name, "read_only")) {
      v.read_only = parse_bool(value);
    }
  }
  return v;
}

bool GaleraView::writable() const {
  return local_state == 4 && cluster_status && iequals(*cluster_status, "Primary") && desync == false &&
         read_only == false;
}

Verdict judge_galera(const GaleraView& v, const config::MysqlRequire& req) {
  std::vector<std::string> unmet;
  auto not_reported = [](const char* name) { return std::string(name) + " not reported (no wsrep?)"; };
  if (req.wsrep_local_state) {
    int want = *req.wsrep_local_state;
    if (!v.local_state) {
      unmet.push_back(not_reported("wsrep_local_state") + ", need " + std::to_string(want));
    } else if (*v.local_state != want) {
      std::string name = v.local_state_comment ? *v.local_state_comment : state_name(*v.local_state);
      unmet.push_back("wsrep_local_state " + std::to_string(*v.local_state) + " (" + name + "), need " +
                      std::to_string(want));
    }
  }
  if (req.wsrep_cluster_status) {
    const std::string& want = *req.wsrep_cluster_status;
    if (!v.cluster_status) {
      unmet.push_back(not_reported("wsrep_cluster_status") + ", need " + want);
    } else if (!iequals(*v.cluster_status, want)) {
      unmet.push_back("wsrep_cluster_status " + *v.cluster_status + ", need " + want);
    }
  }
  auto flag = [&](const char* name, const std::optional<bool>& have, const std::optional<bool>& want) {
    if (!want) return;
    if (!have) {
      unmet.push_back(not_reported(name) + ", need " + on_off(*want));
    } else if (*have != *want) {
      unmet.push_back(std::string(name) + " is " + on_off(*have) + ", need " + on_off(*want));
    }
  };
  flag("wsrep_ready", v.ready, req.wsrep_ready);
  flag("wsrep_desync", v.desync, req.wsrep_desync);
  if (req.read_only) {
    if (!v.read_only) {
      unmet.push_back(std::string("read_only not reported, need ") + on_off(*req.read_only));
    } else if (*v.read_only != *req.read_only) {
      unmet.push_back(std::string("read_only is ") + on_off(*v.read_only) + ", need " + on_off(*req.read_only));
    }
  }
  if (!unmet.empty()) {
    std::string reason;
    for (const auto& u : unmet) reason += (reason.empty() ? "" : "; ") + u;
    return {false, reason};
  }
  // What it saw, for status: the Galera summary, or a plain server's read_only.
  std::string seen;
  auto add = [&](const std::string& s) { seen += (seen.empty() ? "" : ", ") + s; };
  if (v.local_state) add(v.local_state_comment ? *v.local_state_comment : state_name(*v.local_state));
  if (v.cluster_status) add(*v.cluster_status);
  if (v.desync == true) add("desynced");
  if (v.cluster_size) add(std::to_string(*v.cluster_size) + (*v.cluster_size == 1 ? " node" : " nodes"));
  if (v.last_committed) add("last committed " + std::to_string(*v.last_committed));
  if (!v.local_state && !v.cluster_status) add("no wsrep");
  if (v.read_only) add(std::string("read_only ") + on_off(*v.read_only));
  return {true, seen};
}

std::string first_line(std::string_view output) {
  size_t eol = output.find_first_of("\r\n");
  // Skip leading empty lines: a script that prints a blank line first still says something.
  while (eol == 0 && !output.empty()) {
    output.remove_prefix(1);
    eol = output.find_first_of("\r\n");
  }
  std::string_view line = output.substr(0, eol);
  std::string out;
  for (char ch : line.substr(0, std::min(line.size(), kMaxLine))) {
    auto c = static_cast<unsigned char>(ch);
    out += (c >= 0x20 && c < 0x7f) ? ch : (c == '\t' ? ' ' : '.');
  }
  size_t b = out.find_first_not_of(' ');
  if (b == std::string::npos) return {};
  out = out.substr(b, out.find_last_not_of(' ') - b + 1);
  if (line.size() > kMaxLine) out += "...";
  return out;
}

Verdict judge_exec(std::optional<int> exit_code, std::optional<int> signal, std::string_view output,
                   bool agent_output, std::optional<AgentWords>& agent) {
  std::string line = first_line(output);
  if (agent_output) {
    // The raw first line (not the cleaned one): the parser has its own rules for bytes.
    size_t eol = output.find_first_of("\r\n");
    agent = parse_agent_words(output.substr(0, eol));
  }
  if (signal) {
    return {false, "killed by signal " + std::to_string(*signal) + (line.empty() ? "" : ": " + line)};
  }
  int code = exit_code.value_or(-1);
  if (code != 0) return {false, "exit " + std::to_string(code) + (line.empty() ? "" : ": " + line)};
  if (agent && agent->state == ServerState::Down) {
    return {false, "agent says down" + (agent->message.empty() ? "" : ": " + agent->message)};
  }
  return {true, "exit 0" + (line.empty() ? "" : ": " + line)};
}

}  // namespace hafront::health
