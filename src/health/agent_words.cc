#include "health/agent_words.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <string>

namespace hafront::health {

namespace {

bool is_separator(char c) { return c == ' ' || c == '\t' || c == ','; }

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
  });
}

// down > maint > drain > up: the word that keeps traffic away wins.
int strength(ServerState s) {
  switch (s) {
    case ServerState::Down: return 4;
    case ServerState::Maint: return 3;
    case ServerState::Drain: return 2;
    case ServerState::Up: return 1;
    case ServerState::Unknown: return 0;
  }
  return 0;
}

std::optional<ServerState> state_word(std::string_view w) {
  if (iequals(w, "up") || iequals(w, "ready")) return ServerState::Up;
  if (iequals(w, "drain")) return ServerState::Drain;
  if (iequals(w, "maint")) return ServerState::Maint;
  if (iequals(w, "down") || iequals(w, "fail") || iequals(w, "failed") || iequals(w, "stopped")) {
    return ServerState::Down;
  }
  return std::nullopt;
}

// "75%" -> 75; digits only, 0-100.
std::optional<uint32_t> percent_word(std::string_view w) {
  if (w.size() < 2 || w.back() != '%') return std::nullopt;
  std::string_view digits = w.substr(0, w.size() - 1);
  if (digits.size() > 3) return std::nullopt;
  uint32_t n = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc{} || end != digits.data() + digits.size() || n > 100) return std::nullopt;
  return n;
}

std::string printable_trimmed(std::string_view s) {
  std::string out;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    out += (c >= 0x20 && c < 0x7f) ? ch : ' ';
  }
  size_t b = out.find_first_not_of(' ');
  if (b == std::string::npos) return {};
  size_t e = out.find_last_not_of(' ');
  return out.substr(b, e - b + 1);
}

}  // namespace

AgentWords parse_agent_words(std::string_view text) {
  AgentWords out;
  std::string_view line = text.substr(0, std::min(text.size(), kMaxAgentLine));
  size_t eol = line.find_first_of("\r\n");
  if (eol != std::string_view::npos) line = line.substr(0, eol);

  size_t i = 0;
  while (i < line.size()) {
    if (is_separator(line[i])) {
      ++i;
      continue;
    }
    if (line[i] == '#') {
      out.message = printable_trimmed(line.substr(i + 1));
      break;
    }
    size_t j = i;
    while (j < line.size() && !is_separator(line[j]) && line[j] != '#') ++j;
    std::string_view word = line.substr(i, j - i);
    i = j;
    if (auto s = state_word(word)) {
      if (!out.state || strength(*s) > strength(*out.state)) out.state = *s;
    } else if (auto p = percent_word(word)) {
      out.weight_percent = *p;
    }
    // Anything else (HAProxy's maxconn:N, typos, binary garbage) is ignored.
  }
  return out;
}

}  // namespace hafront::health
