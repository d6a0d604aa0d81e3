// Plain types of the HTTP/1.1 message parser (src/proxy/http1.h): limits, the parsed heads,
// what a parse step returns, and the error kinds with the status each one answers.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace hafront::proxy::http1 {

enum class Version : uint8_t { Http10, Http11 };

// The methods whose meaning changes how a message is parsed or forwarded; the rest are Other
// (methods are case-sensitive tokens: "get" is Other).
enum class Method : uint8_t { Get, Head, Post, Put, Delete, Connect, Options, Trace, Patch, Other };

// RFC 9112 3.2: which of the four request-target forms the request uses.
enum class TargetForm : uint8_t { Origin, Absolute, Authority, Asterisk };

// How the body of a message is delimited (RFC 9112 6.3).
//   None        no body at all
//   Length      exactly content_length bytes (possibly 0)
//   Chunked     chunked transfer coding, ends with the last chunk and the trailer section
//   UntilClose  everything until the sender closes (responses only)
//   Tunnel      after the head the connection carries another protocol both ways
//               (2xx to CONNECT, 101 Switching Protocols; responses only)
enum class Framing : uint8_t { None, Length, Chunked, UntilClose, Tunnel };

// Every way a message can be refused. Each kind names one rule, so a log line or a 400 body
// says exactly what was wrong. status_of() gives the status a request error is answered with;
// the proxy answers 502 to a server whose response fails to parse, whatever the kind.
enum class Error : uint8_t {
  None,
  // start line
  TooManyEmptyLines,      // more empty lines before the request line than the limit
  BadMethod,              // method is not a token
  BadRequestLine,         // not exactly "method SP target SP version" (tabs, double spaces, missing parts)
  BadTarget,              // control, space, non-ASCII or '#' in the target, or a malformed URI/authority
  TargetFormNotAllowed,   // authority-form without CONNECT, "*" without OPTIONS, CONNECT without authority-form
  BadVersion,             // not "HTTP/" DIGIT "." DIGIT (e.g. lowercase, extra digits)
  VersionNotSupported,    // a well-formed version other than HTTP/1.0 and HTTP/1.1            505
  UriTooLong,             // the request line overflows the limit while still in the target     414
  StartLineTooLong,       // the request or status line overflows the limit elsewhere
  BadStatusLine,          // response: not "version SP 3DIGIT [SP reason]"
  BadStatusCode,          // response: status code outside 100..599
  // line endings: a lone CR or LF is read differently by different parsers
  BareCr,
  BareLf,
  // header section
  HeaderSectionTooLarge,  // field lines longer in total than the limit                        431
  TooManyFields,          // more field lines than the limit                                    431
  SpaceAfterStartLine,    // whitespace before the first field line (RFC 9112 2.2)
  ObsFold,                // a field line starting with SP or HTAB (obsolete line folding)
  MissingColon,           // a field line without ':'
  BadFieldName,           // empty name or a name that is not a token (e.g. contains a space)
  SpaceBeforeColon,       // whitespace between field name and colon (RFC 9112 5.1)
  BadFieldValue,          // NUL or another control character (other than HTAB) in a field value
  // message framing
  TransferEncodingWithContentLength,  // a request with both
  TransferEncodingInHttp10,           // Transfer-Encoding in an HTTP/1.0 message
  BadTransferEncoding,                // empty, not a list of tokens, or parameters on chunked
  TransferCodingNotChunked,           // a request whose final transfer coding is not chunked
  ChunkedTwice,                       // chunked applied more than once
  UnsupportedTransferCoding,          // a request coded with something besides chunked       501
  BadContentLength,                   // not digits only
  ConflictingContentLength,           // several Content-Length values that differ
  ContentLengthTooLarge,              // above Limits::max_content_length
  // fields with request semantics
  MissingHost,            // HTTP/1.1 request without Host
  DuplicateHost,          // more than one Host field line
  BadHost,                // Host is not uri-host [":" port]
  BadConnection,          // Connection is not a list of tokens, or names too many options
  ExpectationFailed,      // Expect holds something other than 100-continue                    417
  // bodies
  BadChunkSize,           // chunk size missing or not hex ("0x5", " 5", "-1")
  ChunkSizeTooLarge,      // more than 16 hex digits or above Limits::max_content_length
  BadChunkExtension,      // chunk extension not ';' name ['=' token / quoted-string]
  ChunkLineTooLong,       // chunk size and extensions longer than the limit
  MissingChunkDataCrlf,   // chunk data not followed by exactly CRLF
  TrailerSectionTooLarge, // trailer section longer than the limit or with too many fields     431
  TruncatedBody,          // the peer closed before the body's announced end
};

// One line of the header (or trailer) section.
enum class FieldId : uint8_t {
  Other, Host, ContentLength, TransferEncoding, Connection, KeepAlive, ProxyConnection, Te,
  Trailer, Upgrade, Expect,
};

struct Field {
  std::string_view name;   // as received (case preserved)
  std::string_view value;  // without leading and trailing OWS
  FieldId id = FieldId::Other;
  // A field that describes this connection only and is not forwarded: the fixed hop-by-hop
  // fields (RFC 9110 7.6.1) and every field named by a Connection option.
  bool hop_by_hop = false;
};

// Sizes beyond which a message is refused. The defaults follow what HAProxy users are used
// to with tune.bufsize 16384. The head limits together must stay below 4 GiB (offsets into
// a head are 32-bit).
struct Limits {
  uint32_t max_start_line = 8 * 1024;       // request or status line, CRLF excluded
  uint32_t max_header_section = 16 * 1024;  // field lines and the final empty line, CRLFs included
  uint32_t max_fields = 100;
  uint32_t max_leading_empty_lines = 8;     // CRLFs ignored before a request line (RFC 9112 2.2)
  uint32_t max_connection_options = 32;
  uint32_t max_chunk_line = 4 * 1024;       // chunk size and extensions, CRLF excluded
  uint32_t max_trailer_section = 16 * 1024; // trailer field lines and the final CRLF
  uint64_t max_content_length = uint64_t{1} << 62;  // bounds Content-Length and each chunk size
};

// A parsed request head. Every string_view points into the buffer given to the parser: it
// stays valid while that buffer is neither changed nor moved.
struct RequestHead {
  std::string_view method;
  Method method_id = Method::Other;
  std::string_view target;     // as received
  TargetForm form = TargetForm::Origin;
  // The host the request is for: the target's authority in absolute- and authority-form
  // (it wins over Host, RFC 9112 3.2.2), else the Host value; empty when neither has one.
  std::string_view authority;
  // The path for routing: origin- and absolute-form without the query ("/" when an absolute
  // URI has an empty path); empty for authority- and asterisk-form.
  std::string_view path;
  std::string_view host_field; // the Host field value as received (empty when absent)
  bool has_host_field = false;
  Version version = Version::Http11;
  std::vector<Field> fields;   // in order; the vector's capacity is reused across requests

  // The proxy writes Content-Length / Transfer-Encoding itself from these two rather than
  // forwarding the received fields (which also folds repeated identical Content-Lengths).
  Framing framing = Framing::None;  // None, Length or Chunked for a request
  uint64_t content_length = 0;      // when framing is Length
  bool keep_alive = true;           // the client lets the connection carry another request
  bool expect_continue = false;     // Expect: 100-continue in an HTTP/1.1 request
  bool upgrade = false;             // Connection: upgrade with an Upgrade field, HTTP/1.1
};

// A parsed response head; string_views point into the buffer like RequestHead's.
struct ResponseHead {
  Version version = Version::Http11;
  uint16_t status = 0;
  std::string_view reason;
  std::vector<Field> fields;

  Framing framing = Framing::UntilClose;
  uint64_t content_length = 0;
  // The server lets the connection carry another request: false for HTTP/1.0 without
  // keep-alive, Connection: close, a body read until close, a tunnel, or a response with
  // both Transfer-Encoding and Content-Length (RFC 9112 6.3: close after it).
  bool keep_alive = true;
  bool transfer_codings_besides_chunked = false;  // e.g. "gzip, chunked": keep them when forwarding
};

enum class ParseStatus : uint8_t { NeedMore, Done, Error };

// What a head parser returns for the bytes it has been given.
struct ParseResult {
  ParseStatus status = ParseStatus::NeedMore;
  Error error = Error::None;  // when status is Error
  size_t consumed = 0;        // when Done: bytes of the head, skipped empty lines and final CRLF included
};

enum class BodyStatus : uint8_t { NeedMore, Data, Done, Error };

// One step of a body reader: `consumed` bytes of the input are used up (framing and data);
// for Data, `data` is the body bytes among them (a view into the input).
struct BodyStep {
  BodyStatus status = BodyStatus::NeedMore;
  size_t consumed = 0;
  std::string_view data;
  Error error = Error::None;
};

// The status a request refused with `e` is answered with: 400, 414, 417, 431, 501 or 505.
int status_of(Error e);
// A short sentence saying what was wrong, for logs and error bodies.
const char* to_string(Error e);
// The enumerator's name ("BareLf"), for test corpora and metrics labels.
const char* name(Error e);

const char* to_string(Framing f);  // "none", "length", "chunked", "until-close", "tunnel"
const char* to_string(Version v);  // "HTTP/1.0", "HTTP/1.1"

}  // namespace hafront::proxy::http1
