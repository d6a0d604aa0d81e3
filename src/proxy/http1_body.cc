// Body readers: the chunked decoder is a byte-at-a-time state machine, so a fragment may
// end anywhere (inside a size, an extension, a CRLF, a trailer field) and nothing is
// buffered; data runs are handed out as views into the caller's input.
#include <algorithm>

#include "proxy/http1.h"
#include "proxy/http1_chars.h"

namespace hafront::proxy::http1 {

using chars::is_ows;
using chars::is_tchar;

BodyStep ChunkedDecoder::fail(Error e, size_t consumed) {
  state_ = State::Failed;
  error_ = e;
  return {BodyStatus::Error, consumed, {}, e};
}

BodyStep ChunkedDecoder::next(std::string_view input) {
  const size_t n = input.size();
  size_t i = 0;
  while (i < n) {
    switch (state_) {
      case State::Data: {
        const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, n - i));
        remaining_ -= take;
        if (remaining_ == 0) state_ = State::DataCr;
        return {BodyStatus::Data, i + take, input.substr(i, take), Error::None};
      }
      case State::Done:
        return {BodyStatus::Done, i, {}, Error::None};
      case State::Failed:
        return {BodyStatus::Error, i, {}, error_};
      default:
        break;
    }

    const char c = input[i];
    // chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF (RFC 9112 7.1); the size line
    // (CR excluded) is bounded so extensions cannot make a connection buffer-free but busy.
    if (state_ <= State::ExtWs && c != '\r' && ++line_length_ > limits_.max_chunk_line) {
      return fail(Error::ChunkLineTooLong, i);
    }
    if (state_ >= State::TrailerLineStart && state_ <= State::FinalLf && ++trailer_bytes_ > limits_.max_trailer_section) {
      return fail(Error::TrailerSectionTooLarge, i);
    }
    // A lone LF ends a line for some parsers and not for others: never accept one.
    if (c == '\n' && state_ != State::LineLf && state_ != State::DataLf && state_ != State::TrailerLf &&
        state_ != State::FinalLf) {
      return fail(state_ == State::DataCr ? Error::MissingChunkDataCrlf : Error::BareLf, i);
    }

    switch (state_) {
      case State::SizeFirst:
        if (!chars::is_hex(c)) return fail(Error::BadChunkSize, i);
        chunk_size_ = chars::hex_value(c);
        size_digits_ = 1;
        state_ = State::Size;
        break;
      case State::Size:
        if (chars::is_hex(c)) {
          // 16 hex digits fill 64 bits, so the product below cannot wrap.
          if (++size_digits_ > 16) return fail(Error::ChunkSizeTooLarge, i);
          chunk_size_ = chunk_size_ * 16 + chars::hex_value(c);
          if (chunk_size_ > limits_.max_content_length) return fail(Error::ChunkSizeTooLarge, i);
        } else if (c == ';') {
          state_ = State::ExtBeforeName;
        } else if (is_ows(c)) {
          state_ = State::SizeWs;
        } else if (c == '\r') {
          state_ = State::LineLf;
        } else {
          return fail(Error::BadChunkSize, i);
        }
        break;
      // chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
      case State::SizeWs:
        if (c == ';') state_ = State::ExtBeforeName;
        else if (!is_ows(c)) return fail(c == '\r' ? Error::BadChunkSize : Error::BadChunkExtension, i);
        break;
      case State::ExtBeforeName:
        if (is_tchar(c)) state_ = State::ExtName;
        else if (!is_ows(c)) return fail(Error::BadChunkExtension, i);
        break;
      case State::ExtName:
        if (c == '=') state_ = State::ExtBeforeValue;
        else if (c == ';') state_ = State::ExtBeforeName;
        else if (c == '\r') state_ = State::LineLf;
        else if (is_ows(c)) state_ = State::ExtNameWs;
        else if (!is_tchar(c)) return fail(Error::BadChunkExtension, i);
        break;
      case State::ExtNameWs:
        if (c == '=') state_ = State::ExtBeforeValue;
        else if (c == ';') state_ = State::ExtBeforeName;
        else if (!is_ows(c)) return fail(Error::BadChunkExtension, i);
        break;
      case State::ExtBeforeValue:
        if (is_tchar(c)) state_ = State::ExtValue;
        else if (c == '"') state_ = State::ExtQuoted;
        else if (!is_ows(c)) return fail(Error::BadChunkExtension, i);
        break;
      case State::ExtValue:
        if (c == ';') state_ = State::ExtBeforeName;
        else if (c == '\r') state_ = State::LineLf;
        else if (is_ows(c)) state_ = State::ExtWs;
        else if (!is_tchar(c)) return fail(Error::BadChunkExtension, i);
        break;
      case State::ExtQuoted:
        if (c == '"') state_ = State::ExtAfterQuoted;
        else if (c == '\\') state_ = State::ExtQuotedEscape;
        else if (c == '\r') return fail(Error::BareCr, i);
        else if (!chars::is(c, chars::kQdtext)) return fail(Error::BadChunkExtension, i);
        break;
      case State::ExtQuotedEscape:
        if (c == '\r') return fail(Error::BareCr, i);
        if (!chars::is(c, chars::kFieldValue)) return fail(Error::BadChunkExtension, i);
        state_ = State::ExtQuoted;
        break;
      case State::ExtAfterQuoted:
        if (c == ';') state_ = State::ExtBeforeName;
        else if (c == '\r') state_ = State::LineLf;
        else if (is_ows(c)) state_ = State::ExtWs;
        else return fail(Error::BadChunkExtension, i);
        break;
      case State::ExtWs:
        // Whitespace is only allowed before ';' (BWS), not at the end of the line.
        if (c == ';') state_ = State::ExtBeforeName;
        else if (!is_ows(c)) return fail(Error::BadChunkExtension, i);
        break;
      case State::LineLf:
        if (c != '\n') return fail(Error::BareCr, i);
        line_length_ = 0;
        if (chunk_size_ == 0) {
          state_ = State::TrailerLineStart;  // last-chunk: the trailer section follows
        } else {
          remaining_ = chunk_size_;
          state_ = State::Data;
        }
        break;
      case State::DataCr:
        if (c != '\r') return fail(Error::MissingChunkDataCrlf, i);
        state_ = State::DataLf;
        break;
      case State::DataLf:
        if (c != '\n') return fail(Error::MissingChunkDataCrlf, i);
        chunk_size_ = 0;
        size_digits_ = 0;
        state_ = State::SizeFirst;
        break;
      // trailer-section = *( field-line CRLF ), then CRLF; field lines as in a header section.
      case State::TrailerLineStart:
        if (c == '\r') state_ = State::FinalLf;
        else if (is_ows(c)) return fail(Error::ObsFold, i);
        else if (is_tchar(c)) state_ = State::TrailerName;
        else return fail(Error::BadFieldName, i);
        break;
      case State::TrailerName:
        if (c == ':') state_ = State::TrailerValue;
        else if (is_ows(c)) state_ = State::TrailerNameWs;
        else if (c == '\r') return fail(Error::MissingColon, i);
        else if (!is_tchar(c)) return fail(Error::BadFieldName, i);
        break;
      case State::TrailerNameWs:
        if (c == ':') return fail(Error::SpaceBeforeColon, i);
        if (!is_ows(c)) return fail(Error::BadFieldName, i);
        break;
      case State::TrailerValue:
        if (c == '\r') state_ = State::TrailerLf;
        else if (!chars::is(c, chars::kFieldValue)) return fail(Error::BadFieldValue, i);
        break;
      case State::TrailerLf:
        if (c != '\n') return fail(Error::BareCr, i);
        if (++trailer_fields_ > limits_.max_fields) return fail(Error::TrailerSectionTooLarge, i);
        state_ = State::TrailerLineStart;
        break;
      case State::FinalLf:
        if (c != '\n') return fail(Error::BareCr, i);
        state_ = State::Done;
        return {BodyStatus::Done, i + 1, {}, Error::None};
      case State::Data:
      case State::Done:
      case State::Failed:
        break;  // handled above
    }
    ++i;
  }
  if (state_ == State::Failed) return {BodyStatus::Error, n, {}, error_};
  return {state_ == State::Done ? BodyStatus::Done : BodyStatus::NeedMore, n, {}, Error::None};
}

BodyStep BodyReader::next(std::string_view input) {
  switch (framing_) {
    case Framing::None:
      return {BodyStatus::Done, 0, {}, Error::None};
    case Framing::Length: {
      if (remaining_ == 0) return {BodyStatus::Done, 0, {}, Error::None};
      if (input.empty()) return {};
      const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, input.size()));
      remaining_ -= take;
      return {BodyStatus::Data, take, input.substr(0, take), Error::None};
    }
    case Framing::Chunked:
      return chunked_.next(input);
    case Framing::UntilClose:
    case Framing::Tunnel:
      if (input.empty()) return {};
      return {BodyStatus::Data, input.size(), input, Error::None};
  }
  return {};
}

BodyStep BodyReader::on_close() const {
  if (framing_ == Framing::UntilClose || framing_ == Framing::Tunnel || done()) {
    return {BodyStatus::Done, 0, {}, Error::None};
  }
  return {BodyStatus::Error, 0, {}, Error::TruncatedBody};
}

bool BodyReader::done() const {
  switch (framing_) {
    case Framing::None: return true;
    case Framing::Length: return remaining_ == 0;
    case Framing::Chunked: return chunked_.done();
    case Framing::UntilClose:
    case Framing::Tunnel: return false;
  }
  return false;
}

}  // namespace hafront::proxy::http1
