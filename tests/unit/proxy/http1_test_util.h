// Helpers shared by the HTTP/1.1 parser tests: parse a message every way it can arrive
// (all at once, one byte at a time, in two pieces) and check that every way agrees.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "proxy/http1.h"

namespace hafront::proxy::http1::testing {

// Everything a request head says, as one line, so two parses can be compared at once.
inline std::string describe(const RequestHead& h) {
  std::string s;
  s += std::string(h.method) + " " + std::string(h.target) + " " + to_string(h.version);
  s += " form=" + std::to_string(static_cast<int>(h.form));
  s += " authority=" + std::string(h.authority) + " path=" + std::string(h.path);
  s += " host=" + std::string(h.host_field) + (h.has_host_field ? "(present)" : "(absent)");
  s += std::string(" framing=") + to_string(h.framing) + " length=" + std::to_string(h.content_length);
  s += std::string(" keep-alive=") + (h.keep_alive ? "1" : "0") + " continue=" + (h.expect_continue ? "1" : "0");
  s += std::string(" upgrade=") + (h.upgrade ? "1" : "0");
  for (const Field& f : h.fields) {
    s += " [" + std::string(f.name) + "=" + std::string(f.value) + (f.hop_by_hop ? " hop" : "") + "]";
  }
  return s;
}

inline std::string describe(const ResponseHead& h) {
  std::string s = std::string(to_string(h.version)) + " " + std::to_string(h.status) + " " + std::string(h.reason);
  s += std::string(" framing=") + to_string(h.framing) + " length=" + std::to_string(h.content_length);
  s += std::string(" keep-alive=") + (h.keep_alive ? "1" : "0");
  s += std::string(" other-codings=") + (h.transfer_codings_besides_chunked ? "1" : "0");
  for (const Field& f : h.fields) {
    s += " [" + std::string(f.name) + "=" + std::string(f.value) + (f.hop_by_hop ? " hop" : "") + "]";
  }
  return s;
}

inline std::string describe(const ParseResult& r) {
  switch (r.status) {
    case ParseStatus::NeedMore: return "need-more";
    case ParseStatus::Done: return "done " + std::to_string(r.consumed);
    case ParseStatus::Error: return std::string("error ") + name(r.error);
  }
  return "?";
}

struct ParsedRequest {
  ParseResult result;
  RequestHead head;
};

// Parses `raw` in one call, then again with the buffer growing one byte per call, and
// expects both to end the same way with the same head.
inline ParsedRequest parse_request(std::string_view raw, const Limits& limits = {}) {
  ParsedRequest whole;
  RequestParser parser(limits);
  whole.result = parser.feed(raw, whole.head);

  RequestParser bytewise(limits);
  RequestHead head;
  ParseResult r = bytewise.feed(raw.substr(0, 0), head);
  for (size_t i = 1; i <= raw.size() && r.status == ParseStatus::NeedMore; ++i) r = bytewise.feed(raw.substr(0, i), head);
  EXPECT_EQ(describe(r), describe(whole.result)) << "byte-at-a-time differs from one-shot";
  if (r.status == ParseStatus::Done && whole.result.status == ParseStatus::Done) {
    EXPECT_EQ(describe(head), describe(whole.head)) << "byte-at-a-time head differs";
  }
  return whole;
}

struct ParsedResponse {
  ParseResult result;
  ResponseHead head;
};

inline ParsedResponse parse_response(std::string_view raw, Method method = Method::Get, const Limits& limits = {}) {
  ParsedResponse whole;
  ResponseParser parser(limits);
  whole.result = parser.feed(raw, method, whole.head);

  ResponseParser bytewise(limits);
  ResponseHead head;
  ParseResult r;
  for (size_t i = 1; i <= raw.size() && r.status == ParseStatus::NeedMore; ++i) {
    r = bytewise.feed(raw.substr(0, i), method, head);
  }
  EXPECT_EQ(describe(r), describe(whole.result)) << "byte-at-a-time differs from one-shot";
  if (r.status == ParseStatus::Done && whole.result.status == ParseStatus::Done) {
    EXPECT_EQ(describe(head), describe(whole.head)) << "byte-at-a-time head differs";
  }
  return whole;
}

// What a body reader made of some input: the data it gave out, how it ended, and how many
// bytes it used up (the rest belongs to the next message).
struct Decoded {
  BodyStatus status = BodyStatus::NeedMore;
  Error error = Error::None;
  std::string data;
  size_t consumed = 0;

  std::string describe() const {
    std::string s = status == BodyStatus::Done    ? "done"
                    : status == BodyStatus::Error ? std::string("error ") + name(error)
                                                  : "need-more";
    return s + " consumed=" + std::to_string(consumed) + " data=" + data;
  }
};

// Feeds the fragments in order, as a connection would, following the next() contract.
inline Decoded read_body(BodyReader reader, const std::vector<std::string_view>& fragments) {
  Decoded out;
  for (std::string_view in : fragments) {
    for (;;) {
      BodyStep step = reader.next(in);
      out.consumed += step.consumed;
      in.remove_prefix(step.consumed);
      if (step.status == BodyStatus::Data) {
        EXPECT_FALSE(step.data.empty());
        out.data += step.data;
        continue;
      }
      if (step.status == BodyStatus::NeedMore) {
        EXPECT_TRUE(in.empty()) << "NeedMore must consume the whole input";
        break;
      }
      out.status = step.status;
      out.error = step.error;
      return out;
    }
  }
  return out;
}

// Reads `body` in one piece, then split in two at every position, then one byte at a time,
// and expects every way to give the same outcome. Returns the one-piece outcome.
inline Decoded read_body_every_way(const BodyReader& reader, std::string_view body) {
  Decoded whole = read_body(reader, {body});
  for (size_t cut = 0; cut <= body.size(); ++cut) {
    Decoded split = read_body(reader, {body.substr(0, cut), body.substr(cut)});
    EXPECT_EQ(split.describe(), whole.describe()) << "split at " << cut;
  }
  std::vector<std::string_view> bytes = {body.substr(0, 0)};  // an empty body is one empty read
  for (size_t i = 0; i < body.size(); ++i) bytes.push_back(body.substr(i, 1));
  EXPECT_EQ(read_body(reader, bytes).describe(), whole.describe()) << "byte at a time";
  return whole;
}

inline Decoded decode_chunked(std::string_view body, const Limits& limits = {}) {
  return read_body_every_way(BodyReader(Framing::Chunked, 0, limits), body);
}

// Test input escapes: \r \n \t \0 \\ \s (space) and \xHH; physical newlines are dropped so
// each line of a file can end with an explicit \r\n (or not).
inline std::string unescape(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') continue;
    if (c != '\\' || i + 1 >= text.size()) {
      out += c;
      continue;
    }
    const char e = text[++i];
    switch (e) {
      case 'r': out += '\r'; break;
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case '0': out += '\0'; break;
      case 's': out += ' '; break;
      case '\\': out += '\\'; break;
      case 'x':
        if (i + 2 >= text.size()) {
          ADD_FAILURE() << "\\x needs two hex digits";
          break;
        }
        out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
        i += 2;
        break;
      default:
        ADD_FAILURE() << "unknown escape \\" << e;
    }
  }
  return out;
}

}  // namespace hafront::proxy::http1::testing
