#include "config/units.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <vector>

namespace hafront::config {
namespace {

// Splits "1.5s" into the decimal number and the unit. Returns false on malformed numbers.
bool split_number(std::string_view text, std::string_view& number, std::string_view& unit) {
  size_t i = 0;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
  number = text.substr(0, i);
  unit = text.substr(i);
  if (number.empty() || number.front() == '.' || number.back() == '.') return false;
  return std::count(number.begin(), number.end(), '.') <= 1;
}

// Multiplies the decimal text by `scale` exactly; nullopt if the result is not a whole
// number or overflows `limit`.
std::optional<uint64_t> scaled(std::string_view number, uint64_t scale, uint64_t limit) {
  size_t dot = number.find('.');
  std::string_view whole = number.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view{} : number.substr(dot + 1);
  if (whole.size() > 18 || frac.size() > 9) return std::nullopt;
  uint64_t w = 0;
  if (std::from_chars(whole.data(), whole.data() + whole.size(), w).ec != std::errc{}) return std::nullopt;
  if (w != 0 && scale > limit / w) return std::nullopt;
  uint64_t result = w * scale;
  if (!frac.empty()) {
    uint64_t f = 0;
    std::from_chars(frac.data(), frac.data() + frac.size(), f);
    uint64_t denom = 1;
    for (size_t i = 0; i < frac.size(); ++i) denom *= 10;
    // scale <= 86'400'000 (1d in ms) or 2^40 (TiB); f < 10^9, so f*scale fits in 64 bits.
    if ((f * scale) % denom != 0) return std::nullopt;
    result += f * scale / denom;
  }
  if (result > limit) return std::nullopt;
  return result;
}

}  // namespace

std::optional<Duration> parse_duration(std::string_view text) {
  if (text == "0") return Duration{0};
  std::string_view number, unit;
  if (!split_number(text, number, unit)) return std::nullopt;
  static constexpr struct { std::string_view unit; uint64_t ms; } kUnits[] = {
      {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}};
  for (const auto& u : kUnits) {
    if (unit == u.unit) {
      // Ten years is the longest duration that makes sense anywhere in the file.
      auto ms = scaled(number, u.ms, 10ULL * 365 * 86'400'000);
      if (!ms) return std::nullopt;
      return Duration{static_cast<int64_t>(*ms)};
    }
  }
  return std::nullopt;
}

std::string format_duration(Duration d) {
  int64_t ms = d.count();
  if (ms == 0) return "0";
  static constexpr struct { const char* unit; int64_t ms; } kUnits[] = {
      {"d", 86'400'000}, {"h", 3'600'000}, {"m", 60'000}, {"s", 1000}};
  for (const auto& u : kUnits) {
    if (ms % u.ms == 0) return std::to_string(ms / u.ms) + u.unit;
  }
  return std::to_string(ms) + "ms";
}

std::optional<uint64_t> parse_size(std::string_view text) {
  std::string_view number, unit;
  if (!split_number(text, number, unit)) return std::nullopt;
  static constexpr struct { std::string_view unit; uint64_t bytes; } kUnits[] = {
      {"", 1},          {"B", 1},
      {"k", 1ULL << 10}, {"K", 1ULL << 10}, {"KiB", 1ULL << 10}, {"KB", 1ULL << 10},
      {"m", 1ULL << 20}, {"M", 1ULL << 20}, {"MiB", 1ULL << 20}, {"MB", 1ULL << 20},
      {"g", 1ULL << 30}, {"G", 1ULL << 30}, {"GiB", 1ULL << 30}, {"GB", 1ULL << 30}};
  for (const auto& u : kUnits) {
    if (unit == u.unit) return scaled(number, u.bytes, 1ULL << 40);
  }
  return std::nullopt;
}

bool Address::is_unspecified() const {
  size_t n = is_v6() ? 16 : 4;
  return std::all_of(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(n),
                     [](uint8_t b) { return b == 0; });
}

std::string Address::str() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(is_v6() ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
  return buf;
}

std::string Cidr::str() const { return address.str() + "/" + std::to_string(prefix); }

std::string Endpoint::str() const {
  std::string port_text = std::to_string(port);
  if (address.is_v6()) return "[" + address.str() + "]:" + port_text;
  return address.str() + ":" + port_text;
}

std::optional<Address> parse_address(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  std::string s(text);
  Address a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) {
    a.family = Address::Family::V4;
    return a;
  }
  if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
    a.family = Address::Family::V6;
    return a;
  }
  return std::nullopt;
}

std::optional<Cidr> parse_cidr(std::string_view text) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto addr = parse_address(text.substr(0, slash));
  if (!addr) return std::nullopt;
  std::string_view p = text.substr(slash + 1);
  unsigned prefix = 0;
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
  if (p.empty() || ec != std::errc{} || ptr != p.data() + p.size()) return std::nullopt;
  if (prefix > (addr->is_v6() ? 128u : 32u)) return std::nullopt;
  return Cidr{*addr, static_cast<uint8_t>(prefix)};
}

std::optional<uint16_t> parse_port(std::string_view text) {
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size()) return std::nullopt;
  if (port == 0 || port > 65535) return std::nullopt;
  return static_cast<uint16_t>(port);
}

std::optional<Endpoint> parse_endpoint(std::string_view text) {
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    auto a = parse_address(host);
    if (!a || !a->is_v6()) return std::nullopt;
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return std::nullopt;  // bare IPv6
  }
  auto a = parse_address(host);
  auto p = parse_port(port);
  if (!a || !p) return std::nullopt;
  return Endpoint{*a, *p};
}

bool is_valid_name(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(name.front())) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return alnum(c) || c == '_' || c == '-' || c == '.'; });
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace hafront::config
