// Character classes of the HTTP/1.1 grammar (RFC 9110 5.6, RFC 3986 2), one table lookup
// per byte. Internal to the parser (http1.cc, http1_body.cc).
#pragma once

#include <array>
#include <cstdint>

namespace hafront::proxy::http1::chars {

enum : uint8_t {
  kTchar = 1 << 0,       // token characters
  kFieldValue = 1 << 1,  // VCHAR / obs-text / SP / HTAB: anything allowed in a field value
  kTarget = 1 << 2,      // allowed in a request-target: VCHAR except '#'
  kHex = 1 << 3,
  kRegName = 1 << 4,     // unreserved / sub-delims (a '%' is checked apart)
  kQdtext = 1 << 5,      // inside a quoted-string, without escaping
  kDigit = 1 << 6,
};

constexpr std::array<uint8_t, 256> make_table() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    uint8_t k = 0;
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    const bool digit = c >= '0' && c <= '9';
    const bool vchar = c >= 0x21 && c <= 0x7e;
    const bool obs_text = c >= 0x80;
    auto in = [c](const char* set) {
      for (; *set; ++set)
        if (*set == c) return true;
      return false;
    };
    if (alpha || digit || in("!#$%&'*+-.^_`|~")) k |= kTchar;
    if (vchar || obs_text || c == ' ' || c == '\t') k |= kFieldValue;
    if (vchar && c != '#') k |= kTarget;
    if (digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) k |= kHex;
    if (alpha || digit || in("-._~!$&'()*+,;=")) k |= kRegName;
    if (c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) || obs_text)
      k |= kQdtext;
    if (digit) k |= kDigit;
    t[static_cast<size_t>(c)] = k;
  }
  return t;
}

inline constexpr std::array<uint8_t, 256> kTable = make_table();

inline bool is(char c, uint8_t cls) { return (kTable[static_cast<unsigned char>(c)] & cls) != 0; }
inline bool is_tchar(char c) { return is(c, kTchar); }
inline bool is_digit(char c) { return is(c, kDigit); }
inline bool is_hex(char c) { return is(c, kHex); }
inline bool is_ows(char c) { return c == ' ' || c == '\t'; }

inline unsigned hex_value(char c) {
  if (c >= '0' && c <= '9') return static_cast<unsigned>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<unsigned>(c - 'a' + 10);
  return static_cast<unsigned>(c - 'A' + 10);
}

}  // namespace hafront::proxy::http1::chars
