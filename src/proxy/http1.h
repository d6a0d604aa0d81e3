// The strict HTTP/1.1 message parser of the proxy (RFC 9112, RFC 9110): incremental head
// parsers for requests and responses, and body readers for every framing. Pure logic: no I/O,
// no threads, no exceptions, no allocation but the reusable field vector of a head.
//
// A connection keeps one parser per direction. The caller hands it the bytes received so far
// for the current message; the parser remembers how far it has scanned, so feeding a longer
// buffer costs only the new bytes. The buffer may move between calls but must start with
// the same bytes. Anything RFC 9112 lets recipients read in more than one way (a lone CR or
// LF, obsolete folding, whitespace before a colon, Transfer-Encoding with Content-Length,
// differing Content-Lengths, ...) is refused with a precise Error rather than guessed at,
// since two parsers guessing differently is how requests get smuggled.
#pragma once

#include <cstdint>
#include <string_view>

#include "proxy/http1_types.h"

namespace hafront::proxy::http1 {

namespace detail {
// Finds the end of a head without parsing it: checks line endings, sizes and field count as
// bytes arrive, so an oversized or malformed head is refused early and a growing buffer is
// scanned once. The head itself is parsed in one pass when its end is found.
struct HeadScanner {
  enum class Phase : uint8_t { LeadingEmpty, StartLine, Fields, Done, Failed };
  Phase phase = Phase::LeadingEmpty;
  bool method_ended = false;     // requests: the first SP/HTAB of the request line was seen
  uint32_t pos = 0;              // next byte to look at
  uint32_t method_cursor = 0;    // requests: how far the method has been checked
  uint32_t empty_lines = 0;      // skipped before the request line
  uint32_t start_line_begin = 0;
  uint32_t start_line_end = 0;   // offset of the start line's CR
  uint32_t fields_begin = 0;
  uint32_t line_begin = 0;       // current field line
  uint32_t field_count = 0;
  Error error = Error::None;

  // Looks at buffer[pos..]. Returns Done with `consumed` = end of the head once the empty
  // line ending it is found.
  ParseResult scan(std::string_view buffer, bool request, const Limits& limits);
};
}  // namespace detail

// Parses request heads, one at a time.
class RequestParser {
 public:
  explicit RequestParser(const Limits& limits = {}) : limits_(limits) {}

  // Called with the connection's unconsumed bytes each time more arrive. NeedMore: the head
  // is not complete yet (nothing of `head` is meaningful). Done: `head` is filled in and
  // `consumed` bytes belong to it; what follows is the body or the next request. Error: the
  // request must be refused with status_of(error) and the connection closed. After Done or
  // Error, call reset() before parsing the next request.
  ParseResult feed(std::string_view buffer, RequestHead& head);

  // Forgets the current message; the next feed() starts a new one at buffer offset 0.
  void reset() { scanner_ = {}; }

  const Limits& limits() const { return limits_; }

 private:
  detail::HeadScanner scanner_;
  Limits limits_;
};

// Parses response heads. The framing of a response depends on the request it answers
// (RFC 9112 6.3), so feed() takes that request's method.
class ResponseParser {
 public:
  explicit ResponseParser(const Limits& limits = {}) : limits_(limits) {}

  // Same contract as RequestParser::feed(). A 1xx other than 101 is a complete message
  // with no body: reset() and parse the final response that follows it.
  ParseResult feed(std::string_view buffer, Method request_method, ResponseHead& head);
  void reset() { scanner_ = {}; }

 private:
  detail::HeadScanner scanner_;
  Limits limits_;
};

// Decodes a chunked body (RFC 9112 7.1) from fragments of any size: chunk sizes in hex with
// overflow checks, extensions checked for syntax and bounded, exactly CRLF after each chunk's
// data, and a trailer section checked with the header field rules and bounded.
class ChunkedDecoder {
 public:
  explicit ChunkedDecoder(const Limits& limits = {}) : limits_(limits) {}

  // Reads from `input` (the bytes after what earlier calls consumed). Returns Data with the
  // next run of body bytes, NeedMore once all of `input` is consumed without reaching data,
  // Done when the message ended (`consumed` stops there: later bytes are the next message),
  // or Error. Call again with the rest of the input after Data.
  BodyStep next(std::string_view input);

  bool done() const { return state_ == State::Done; }
  // Trailer fields seen (they are checked but not returned: forwarding the consumed bytes
  // verbatim keeps them, decoding drops them, which RFC 9110 6.5.1 allows).
  uint32_t trailer_fields() const { return trailer_fields_; }

 private:
  // Order matters: next() tells size-line states (SizeFirst..ExtWs) and trailer states
  // (TrailerLineStart..FinalLf) by range, to bound those lines.
  enum class State : uint8_t {
    SizeFirst, Size, SizeWs, ExtBeforeName, ExtName, ExtNameWs, ExtBeforeValue, ExtValue,
    ExtQuoted, ExtQuotedEscape, ExtAfterQuoted, ExtWs, LineLf,
    Data, DataCr, DataLf,
    TrailerLineStart, TrailerName, TrailerNameWs, TrailerValue, TrailerLf, FinalLf,
    Done, Failed,
  };
  BodyStep fail(Error e, size_t consumed);

  Limits limits_;
  State state_ = State::SizeFirst;
  uint8_t size_digits_ = 0;
  uint32_t line_length_ = 0;      // bytes of the current chunk line
  uint32_t trailer_bytes_ = 0;
  uint32_t trailer_fields_ = 0;
  uint64_t chunk_size_ = 0;
  uint64_t remaining_ = 0;        // data bytes left in the current chunk
  Error error_ = Error::None;
};

// One interface over every framing, for the relay: feed it what arrives after the head.
class BodyReader {
 public:
  BodyReader() = default;
  // Starts a body of the given framing (content_length matters for Length). Tunnel is read
  // like UntilClose: everything is data.
  BodyReader(Framing framing, uint64_t content_length, const Limits& limits = {})
      : framing_(framing), remaining_(content_length), chunked_(limits) {}

  // Same contract as ChunkedDecoder::next(). None and a finished Length return Done with
  // nothing consumed; UntilClose never ends here, only at on_close().
  BodyStep next(std::string_view input);

  // The peer closed its side. Done when that ends the body (UntilClose, Tunnel, or a body
  // already complete), else Error TruncatedBody.
  BodyStep on_close() const;

  Framing framing() const { return framing_; }
  bool done() const;

 private:
  Framing framing_ = Framing::None;
  uint64_t remaining_ = 0;
  ChunkedDecoder chunked_;
};

// The first field with this id, or nullptr.
const Field* find(const std::vector<Field>& fields, FieldId id);

// Case-insensitive comparison of ASCII names (field names, codings, connection options).
bool equals_ignore_case(std::string_view a, std::string_view b);

}  // namespace hafront::proxy::http1
