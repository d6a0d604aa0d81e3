// The HTTP/1.1 head parsers against RFC 9112 / RFC 9110, rule by rule, accept and reject
// side. Every request and response here is also fed one byte at a time (see
// http1_test_util.h), which must give the same result as feeding it whole.
#include "proxy/http1.h"

#include <gtest/gtest.h>

#include <deque>
#include <set>
#include <string>

#include "http1_test_util.h"

namespace hafront::proxy::http1 {
namespace {

using testing::parse_request;
using testing::parse_response;

// A request with the given request line and field lines (each without CRLF).
std::string request(std::string_view line, std::initializer_list<std::string_view> fields = {"Host: example.com"}) {
  std::string s(line);
  s += "\r\n";
  for (auto f : fields) {
    s += f;
    s += "\r\n";
  }
  return s + "\r\n";
}

Error request_error(std::string_view raw, const Limits& limits = {}) {
  auto p = parse_request(raw, limits);
  EXPECT_NE(p.result.status, ParseStatus::Done) << raw;
  return p.result.error;
}

// A head's views point into the bytes it was parsed from: keep every accepted request's
// bytes alive (and in place) until the end of the test program.
std::string_view keep(std::string raw) {
  static std::deque<std::string> kept;
  return kept.emplace_back(std::move(raw));
}

RequestHead accepted(std::string raw_request, const Limits& limits = {}) {
  const std::string_view raw = keep(std::move(raw_request));
  auto p = parse_request(raw, limits);
  EXPECT_EQ(p.result.status, ParseStatus::Done) << raw << " -> " << name(p.result.error);
  if (p.result.status == ParseStatus::Done) {
    EXPECT_EQ(p.result.consumed, raw.size());
  }
  return p.head;
}

// ---- request line ---------------------------------------------------------------------

TEST(Http1RequestLine, ParsesAnOriginFormRequest) {
  const std::string raw = request("GET /a/b?c=d HTTP/1.1", {"Host: example.com", "Accept: */*"});
  auto p = parse_request(raw);
  ASSERT_EQ(p.result.status, ParseStatus::Done);
  EXPECT_EQ(p.result.consumed, raw.size());
  const RequestHead& h = p.head;
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.method_id, Method::Get);
  EXPECT_EQ(h.target, "/a/b?c=d");
  EXPECT_EQ(h.form, TargetForm::Origin);
  EXPECT_EQ(h.path, "/a/b");
  EXPECT_EQ(h.version, Version::Http11);
  EXPECT_EQ(h.authority, "example.com");
  EXPECT_EQ(h.host_field, "example.com");
  EXPECT_TRUE(h.has_host_field);
  EXPECT_EQ(h.framing, Framing::None);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_FALSE(h.expect_continue);
  EXPECT_FALSE(h.upgrade);
  ASSERT_EQ(h.fields.size(), 2u);
  EXPECT_EQ(h.fields[1].name, "Accept");
  EXPECT_EQ(h.fields[1].value, "*/*");
  EXPECT_EQ(h.fields[0].id, FieldId::Host);
}

TEST(Http1RequestLine, KnowsMethodsCaseSensitivelyAndAcceptsAnyToken) {
  EXPECT_EQ(accepted(request("HEAD / HTTP/1.1")).method_id, Method::Head);
  EXPECT_EQ(accepted(request("POST / HTTP/1.1")).method_id, Method::Post);
  EXPECT_EQ(accepted(request("DELETE / HTTP/1.1")).method_id, Method::Delete);
  EXPECT_EQ(accepted(request("PATCH / HTTP/1.1")).method_id, Method::Patch);
  EXPECT_EQ(accepted(request("get / HTTP/1.1")).method_id, Method::Other);
  auto h = accepted(request("M-SEARCH / HTTP/1.1"));
  EXPECT_EQ(h.method, "M-SEARCH");
  EXPECT_EQ(h.method_id, Method::Other);
}

TEST(Http1RequestLine, RefusesAMethodThatIsNotAToken) {
  EXPECT_EQ(request_error(request("GE(T / HTTP/1.1")), Error::BadMethod);
  EXPECT_EQ(request_error(request("GÉT / HTTP/1.1")), Error::BadMethod);
  EXPECT_EQ(request_error(request("/index.html HTTP/1.1")), Error::BadMethod);
}

TEST(Http1RequestLine, RefusesWhatIsNotHttpAtItsFirstByte) {
  // A TLS ClientHello sent to a plain HTTP port: no need to wait for a line break.
  RequestParser parser;
  RequestHead head;
  auto r = parser.feed(std::string_view("\x16\x03\x01\x02\x00", 5), head);
  EXPECT_EQ(r.status, ParseStatus::Error);
  EXPECT_EQ(r.error, Error::BadMethod);
  EXPECT_EQ(status_of(r.error), 400);
}

TEST(Http1RequestLine, RefusesAnythingButSingleSpaceSeparators) {
  for (const char* line : {"GET\t/ HTTP/1.1", "GET  / HTTP/1.1", "GET /\tHTTP/1.1", "GET /  HTTP/1.1",
                           "GET / HTTP/1.1 ", " GET / HTTP/1.1", "GET / a HTTP/1.1", "GET /", "GET",
                           "GET / ", "GET  HTTP/1.1", "GET\t/\tHTTP/1.1"}) {
    EXPECT_EQ(request_error(request(line)), Error::BadRequestLine) << line;
  }
}

TEST(Http1RequestLine, RefusesControlSpaceNonAsciiAndFragmentInTheTarget) {
  EXPECT_EQ(request_error(request("GET /a\x01 HTTP/1.1")), Error::BadTarget);
  EXPECT_EQ(request_error(request("GET /a\x7f HTTP/1.1")), Error::BadTarget);
  EXPECT_EQ(request_error(request("GET /caf\xc3\xa9 HTTP/1.1")), Error::BadTarget);
  EXPECT_EQ(request_error(request("GET /a#frag HTTP/1.1")), Error::BadTarget);
  EXPECT_EQ(request_error(request(std::string("GET /a\0b HTTP/1.1", 17))), Error::BadTarget);
  // Visible ASCII that RFC 3986 would want percent-encoded is let through, as HAProxy does.
  EXPECT_EQ(accepted(request("GET /a|b{c}\"d\" HTTP/1.1")).target, "/a|b{c}\"d\"");
}

TEST(Http1RequestLine, SortsTheFourTargetForms) {
  auto star = accepted(request("OPTIONS * HTTP/1.1"));
  EXPECT_EQ(star.form, TargetForm::Asterisk);
  EXPECT_EQ(star.path, "");
  EXPECT_EQ(star.authority, "example.com");

  auto connect = accepted(request("CONNECT backend.example:443 HTTP/1.1"));
  EXPECT_EQ(connect.form, TargetForm::Authority);
  EXPECT_EQ(connect.authority, "backend.example:443");
  EXPECT_EQ(accepted(request("CONNECT [2001:db8::1]:443 HTTP/1.1")).authority, "[2001:db8::1]:443");

  auto absolute = accepted(request("GET http://Origin.example:8080/p/q?x=1 HTTP/1.1"));
  EXPECT_EQ(absolute.form, TargetForm::Absolute);
  EXPECT_EQ(absolute.authority, "Origin.example:8080");
  EXPECT_EQ(absolute.path, "/p/q");
  EXPECT_EQ(accepted(request("GET HTTPS://origin.example HTTP/1.1")).path, "/");
  EXPECT_EQ(accepted(request("GET http://origin.example?x HTTP/1.1")).path, "/");
}

TEST(Http1RequestLine, AllowsAuthorityFormOnlyWithConnectAndAsteriskOnlyWithOptions) {
  EXPECT_EQ(request_error(request("GET * HTTP/1.1")), Error::TargetFormNotAllowed);
  EXPECT_EQ(request_error(request("GET example.com:443 HTTP/1.1")), Error::TargetFormNotAllowed);
  EXPECT_EQ(request_error(request("CONNECT / HTTP/1.1")), Error::TargetFormNotAllowed);
  EXPECT_EQ(request_error(request("CONNECT * HTTP/1.1")), Error::TargetFormNotAllowed);
  EXPECT_EQ(request_error(request("CONNECT http://example.com:443/ HTTP/1.1")), Error::TargetFormNotAllowed);
  EXPECT_EQ(request_error(request("CONNECT example.com HTTP/1.1")), Error::BadTarget);  // no port
  EXPECT_EQ(request_error(request("CONNECT example.com:99999 HTTP/1.1")), Error::BadTarget);
}

TEST(Http1RequestLine, RefusesMalformedAbsoluteUris) {
  for (const char* line : {"GET ftp://example.com/ HTTP/1.1", "GET http:///x HTTP/1.1",
                           "GET http://user@example.com/ HTTP/1.1", "GET http://example.com:65536/ HTTP/1.1",
                           "GET http://exa%zzmple/ HTTP/1.1", "GET http:/x HTTP/1.1", "GET foo HTTP/1.1",
                           "GET http://[::1/ HTTP/1.1"}) {
    EXPECT_EQ(request_error(request(line)), Error::BadTarget) << line;
  }
}

TEST(Http1RequestLine, AcceptsHttp10AndHttp11Only) {
  EXPECT_EQ(accepted(request("GET / HTTP/1.0", {})).version, Version::Http10);
  for (const char* v : {"HTTP/2.0", "HTTP/0.9", "HTTP/1.2", "HTTP/3.0"}) {
    Error e = request_error(request(std::string("GET / ") + v));
    EXPECT_EQ(e, Error::VersionNotSupported) << v;
    EXPECT_EQ(status_of(e), 505);
  }
  for (const char* v : {"http/1.1", "HTTP/1.10", "HTTP/11", "HTTP/1", "HTTP/1.x", "HTTPS/1.1", "HTTP/1,1"}) {
    EXPECT_EQ(request_error(request(std::string("GET / ") + v)), Error::BadVersion) << v;
  }
}

TEST(Http1RequestLine, SkipsABoundedNumberOfEmptyLinesBeforeIt) {
  const std::string raw = "\r\n\r\n" + request("GET / HTTP/1.1");
  auto h = accepted(raw);
  EXPECT_EQ(h.target, "/");

  std::string eight, nine;
  for (int i = 0; i < 8; ++i) eight += "\r\n";
  nine = eight + "\r\n";
  accepted(eight + request("GET / HTTP/1.1"));
  EXPECT_EQ(request_error(nine + request("GET / HTTP/1.1")), Error::TooManyEmptyLines);
  EXPECT_EQ(request_error("\n" + request("GET / HTTP/1.1")), Error::BareLf);
  EXPECT_EQ(request_error("\rGET / HTTP/1.1\r\n\r\n"), Error::BareCr);
}

// ---- line endings ---------------------------------------------------------------------

TEST(Http1LineEndings, RefusesABareLfAnywhereInTheHead) {
  EXPECT_EQ(request_error("GET / HTTP/1.1\nHost: a\r\n\r\n"), Error::BareLf);
  EXPECT_EQ(request_error("GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n"), Error::BareLf);
  EXPECT_EQ(request_error("GET / HTTP/1.1\r\nHost: a\r\n\n"), Error::BareLf);
  EXPECT_EQ(request_error("GET / HTTP/1.1\r\nHost: a\n\n"), Error::BareLf);
}

TEST(Http1LineEndings, RefusesABareCrAnywhereInTheHead) {
  EXPECT_EQ(request_error("GET /\r HTTP/1.1\r\nHost: a\r\n\r\n"), Error::BareCr);
  EXPECT_EQ(request_error("GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n"), Error::BareCr);
  EXPECT_EQ(request_error("GET / HTTP/1.1\r\nHost: a\r\n\r\r\n"), Error::BareCr);
  EXPECT_EQ(request_error("GET / HTTP/1.1\r\r\nHost: a\r\n\r\n"), Error::BareCr);
}

TEST(Http1LineEndings, WaitsAtACrThatEndsTheBuffer) {
  RequestParser parser;
  RequestHead head;
  EXPECT_EQ(parser.feed("GET / HTTP/1.1\r", head).status, ParseStatus::NeedMore);
  EXPECT_EQ(parser.feed("GET / HTTP/1.1\r\nHost: a\r", head).status, ParseStatus::NeedMore);
  EXPECT_EQ(parser.feed("GET / HTTP/1.1\r\nHost: a\r\n\r", head).status, ParseStatus::NeedMore);
  EXPECT_EQ(parser.feed("GET / HTTP/1.1\r\nHost: a\r\n\r\n", head).status, ParseStatus::Done);
}

// ---- limits ---------------------------------------------------------------------------

TEST(Http1Limits, RefusesATooLongTargetWith414AsSoonAsItOverflows) {
  Limits limits;
  limits.max_start_line = 32;
  // "GET " + target + " HTTP/1.1" = 13 + target bytes.
  accepted(request("GET /" + std::string(18, 'a') + " HTTP/1.1"), limits);  // exactly 32
  EXPECT_EQ(request_error(request("GET /" + std::string(19, 'a') + " HTTP/1.1"), limits), Error::UriTooLong);

  RequestParser parser(limits);
  RequestHead head;
  const std::string partial = "GET /" + std::string(40, 'a');  // no line break yet
  EXPECT_EQ(parser.feed(std::string_view(partial).substr(0, 32), head).status, ParseStatus::NeedMore);
  auto r = parser.feed(partial, head);
  EXPECT_EQ(r.error, Error::UriTooLong);
  EXPECT_EQ(status_of(r.error), 414);
}

TEST(Http1Limits, TellsATooLongMethodOrVersionFromATooLongTarget) {
  Limits limits;
  limits.max_start_line = 32;
  EXPECT_EQ(request_error(request(std::string(40, 'G') + " / HTTP/1.1"), limits), Error::StartLineTooLong);
  EXPECT_EQ(request_error(request("GET / HTTP/1.1" + std::string(20, 'x')), limits), Error::StartLineTooLong);
  // A target that leaves room for no more than a version is what overflows.
  EXPECT_EQ(request_error(request("GET /" + std::string(20, 'a') + " HTTP/1.1" + std::string(20, 'x')), limits),
            Error::UriTooLong);
  EXPECT_EQ(status_of(Error::StartLineTooLong), 400);
}

TEST(Http1Limits, DefaultRequestLineIs8KiB) {
  const std::string fits = "GET /" + std::string(8192 - 14, 'a') + " HTTP/1.1";
  ASSERT_EQ(fits.size(), 8192u);
  accepted(request(fits));
  EXPECT_EQ(request_error(request("GET /" + std::string(8192, 'a') + " HTTP/1.1")), Error::UriTooLong);
}

TEST(Http1Limits, RefusesAHeaderSectionOverItsSizeWith431) {
  Limits limits;
  limits.max_header_section = 32;
  // "Host: a\r\n" (9) + "X: " + v + "\r\n" (5 + v) + "\r\n" (2) = 16 + v
  accepted("GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(16, 'v') + "\r\n\r\n", limits);
  Error e = request_error("GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(17, 'v') + "\r\n\r\n", limits);
  EXPECT_EQ(e, Error::HeaderSectionTooLarge);
  EXPECT_EQ(status_of(e), 431);
  // Refused without waiting for the end of the head.
  RequestParser parser(limits);
  RequestHead head;
  EXPECT_EQ(parser.feed("GET / HTTP/1.1\r\nX: " + std::string(100, 'v'), head).error, Error::HeaderSectionTooLarge);
}

TEST(Http1Limits, DefaultHeaderSectionIs16KiB) {
  const std::string head = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
  // section = 9 + 3 + v + 2 + 2
  accepted(head + std::string(16384 - 16, 'v') + "\r\n\r\n");
  EXPECT_EQ(request_error(head + std::string(16384 - 15, 'v') + "\r\n\r\n"), Error::HeaderSectionTooLarge);
}

TEST(Http1Limits, RefusesMoreFieldsThanTheLimitWith431) {
  std::string fields;
  for (int i = 0; i < 99; ++i) fields += "X-" + std::to_string(i) + ": v\r\n";
  const std::string hundred = "GET / HTTP/1.1\r\nHost: a\r\n" + fields + "\r\n";
  EXPECT_EQ(accepted(hundred).fields.size(), 100u);
  const std::string more = "GET / HTTP/1.1\r\nHost: a\r\nX-Extra: v\r\n" + fields + "\r\n";
  Error e = request_error(more);
  EXPECT_EQ(e, Error::TooManyFields);
  EXPECT_EQ(status_of(e), 431);
}

// ---- field lines ----------------------------------------------------------------------

TEST(Http1Fields, TrimsOptionalWhitespaceAroundValuesOnly) {
  auto h = accepted(request("GET / HTTP/1.1", {"Host: a", "X-A:  \t v a l \t ", "X-Empty:", "X-Blank:   "}));
  ASSERT_EQ(h.fields.size(), 4u);
  EXPECT_EQ(h.fields[1].value, "v a l");
  EXPECT_EQ(h.fields[2].value, "");
  EXPECT_EQ(h.fields[3].value, "");
}

TEST(Http1Fields, AllowsHtabAndObsTextInValues) {
  auto h = accepted(request("GET / HTTP/1.1", {"Host: a", "X-A: a\tb", "X-B: caf\xc3\xa9 \x80\xff"}));
  EXPECT_EQ(h.fields[1].value, "a\tb");
  EXPECT_EQ(h.fields[2].value, "caf\xc3\xa9 \x80\xff");
}

TEST(Http1Fields, RefusesControlCharactersInValues) {
  EXPECT_EQ(request_error(request("GET / HTTP/1.1", {"Host: a", std::string_view("X: a\0b", 6)})), Error::BadFieldValue);
  EXPECT_EQ(request_error(request("GET / HTTP/1.1", {"Host: a", "X: a\x01"})), Error::BadFieldValue);
  EXPECT_EQ(request_error(request("GET / HTTP/1.1", {"Host: a", "X: \x0b"})), Error::BadFieldValue);
  EXPECT_EQ(request_error(request("GET / HTTP/1.1", {"Host: a", "X: a\x7f"})), Error::BadFieldValue);
  EXPECT_EQ(request_error(request("GET / HTTP/1.1", {"Host: a", "X: a\x1b[31m"})), Error::BadFieldValue);
}

TEST(Http1Fields, RefusesObsoleteLineFolding) {
  EXPECT_EQ(request_error(request("GET / HTTP/1.1", {"Host: a", "X: a", " b"})), Error::ObsFold);
  EXPECT_EQ(request_error(request("GET / HTTP/1.1", {"Host: a", "X: a", "\tb"})), Error::ObsFold);
}

TEST(Http1Fields, RefusesWhitespaceBeforeTheFirstField) {
  EXPECT_EQ(request_error(request("GET / HTTP/1.1", {" Host: a"})), Error::SpaceAfterStartLine);
}

TEST(Http1Fields, RefusesWhitespaceBetweenNameAndColon) {
  EXPECT_EQ(request_error(request("GET / HTTP/1.1", {"Host : a"})), Error::SpaceBeforeColon);
  EXPECT_EQ(request_error(request("GET / HTTP/1.1", {"Host: a", "X\t: a"})), Error::SpaceBeforeColon);
}

TEST(Http1Fields, RefusesNamesThatAreNotTokens) {
  for (const char* f : {"Ho st: a", ": a", "X@Y: z", "X\x80: y", "X(1): y", "\"X\": y"}) {
    EXPECT_EQ(request_error(request("GET / HTTP/1.1", {"Host: a", f})), Error::BadFieldName) << f;
  }
  EXPECT_EQ(request_error(request("GET / HTTP/1.1", {"Host: a", "NoColonHere"})), Error::MissingColon);
}

TEST(Http1Fields, RecognisesKnownNamesCaseInsensitively) {
  auto h = accepted(request("GET / HTTP/1.1", {"hOsT: a", "CONTENT-length: 0", "x-other: 1"}));
  EXPECT_EQ(h.fields[0].id, FieldId::Host);
  EXPECT_EQ(h.fields[1].id, FieldId::ContentLength);
  EXPECT_EQ(h.fields[2].id, FieldId::Other);
  EXPECT_EQ(h.fields[0].name, "hOsT");  // case is kept for forwarding
  EXPECT_EQ(find(h.fields, FieldId::ContentLength), &h.fields[1]);
  EXPECT_EQ(find(h.fields, FieldId::Expect), nullptr);
}

// ---- pipelining and reuse -------------------------------------------------------------

TEST(Http1Pipelining, LeavesTheNextRequestAfterConsumed) {
  const std::string first = request("GET /1 HTTP/1.1");
  const std::string second = request("POST /2 HTTP/1.1", {"Host: example.com", "Content-Length: 3"}) + "abc";
  const std::string both = first + second;
  auto p = parse_request(both);
  ASSERT_EQ(p.result.status, ParseStatus::Done);
  EXPECT_EQ(p.result.consumed, first.size());
  EXPECT_EQ(p.head.target, "/1");

  RequestParser parser;
  RequestHead head;
  ASSERT_EQ(parser.feed(both, head).status, ParseStatus::Done);
  parser.reset();
  const std::string_view rest = std::string_view(both).substr(first.size());
  auto r = parser.feed(rest, head);
  ASSERT_EQ(r.status, ParseStatus::Done);
  EXPECT_EQ(head.target, "/2");
  EXPECT_EQ(head.framing, Framing::Length);
  EXPECT_EQ(rest.substr(r.consumed), "abc");
}

TEST(Http1Pipelining, ReusesTheFieldVectorAcrossRequests) {
  RequestParser parser;
  RequestHead head;
  const std::string a = request("GET / HTTP/1.1", {"Host: a", "X: 1", "Y: 2"});
  ASSERT_EQ(parser.feed(a, head).status, ParseStatus::Done);
  const auto* storage = head.fields.data();
  parser.reset();
  const std::string b = request("GET / HTTP/1.1", {"Host: b"});
  ASSERT_EQ(parser.feed(b, head).status, ParseStatus::Done);
  EXPECT_EQ(head.fields.size(), 1u);
  EXPECT_EQ(head.fields.data(), storage);
}

TEST(Http1Pipelining, ScansAGrowingBufferOnce) {
  // A head arriving in many small pieces is resumed where it stopped; the scan offset
  // never goes back (a quadratic rescan would make this test slow, not wrong, so also
  // check the state directly).
  std::string raw = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 90; ++i) raw += "X-Field-" + std::to_string(i) + ": some value here\r\n";
  raw += "\r\n";
  RequestParser parser;
  RequestHead head;
  ParseResult r;
  for (size_t i = 1; i <= raw.size() && r.status == ParseStatus::NeedMore; ++i) r = parser.feed(raw.substr(0, i), head);
  EXPECT_EQ(r.status, ParseStatus::Done);
  EXPECT_EQ(r.consumed, raw.size());
  EXPECT_EQ(head.fields.size(), 91u);
}

// ---- framing --------------------------------------------------------------------------

TEST(Http1Framing, ReadsContentLength) {
  auto h = accepted(request("POST / HTTP/1.1", {"Host: a", "Content-Length: 42"}));
  EXPECT_EQ(h.framing, Framing::Length);
  EXPECT_EQ(h.content_length, 42u);
  auto zero = accepted(request("POST / HTTP/1.1", {"Host: a", "Content-Length: 0"}));
  EXPECT_EQ(zero.framing, Framing::Length);
  EXPECT_EQ(zero.content_length, 0u);
  EXPECT_EQ(accepted(request("POST / HTTP/1.1", {"Host: a", "Content-Length: 007"})).content_length, 7u);
}

TEST(Http1Framing, AcceptsRepeatedContentLengthOnlyWhenIdentical) {
  auto two = accepted(request("POST / HTTP/1.1", {"Host: a", "Content-Length: 5", "Content-Length: 5"}));
  EXPECT_EQ(two.content_length, 5u);
  auto list = accepted(request("POST / HTTP/1.1", {"Host: a", "Content-Length: 5, 5,5"}));
  EXPECT_EQ(list.content_length, 5u);
  EXPECT_EQ(request_error(request("POST / HTTP/1.1", {"Host: a", "Content-Length: 5", "Content-Length: 6"})),
            Error::ConflictingContentLength);
  EXPECT_EQ(request_error(request("POST / HTTP/1.1", {"Host: a", "Content-Length: 5, 6"})),
            Error::ConflictingContentLength);
}

TEST(Http1Framing, RefusesContentLengthThatIsNotDigitsOnly) {
  for (const char* v : {"+5", "-5", "5a", "x5", "0x5", "5 5", "5.0", "", "5,", ",5", "5;q=1", "\"5\"", "1e3"}) {
    EXPECT_EQ(request_error(request("POST / HTTP/1.1", {"Host: a", std::string("Content-Length: ") + v})),
              Error::BadContentLength)
        << v;
  }
}

TEST(Http1Framing, BoundsContentLength) {
  EXPECT_EQ(accepted(request("POST / HTTP/1.1", {"Host: a", "Content-Length: 4611686018427387904"})).content_length,
            uint64_t{1} << 62);
  for (const char* v : {"4611686018427387905", "18446744073709551616", "99999999999999999999999999"}) {
    EXPECT_EQ(request_error(request("POST / HTTP/1.1", {"Host: a", std::string("Content-Length: ") + v})),
              Error::ContentLengthTooLarge)
        << v;
  }
}

TEST(Http1Framing, ReadsChunkedCaseInsensitively) {
  EXPECT_EQ(accepted(request("POST / HTTP/1.1", {"Host: a", "Transfer-Encoding: chunked"})).framing, Framing::Chunked);
  EXPECT_EQ(accepted(request("POST / HTTP/1.1", {"Host: a", "transfer-encoding: CHUNKED"})).framing, Framing::Chunked);
  // Empty list elements are ignored (RFC 9110 5.6.1).
  EXPECT_EQ(accepted(request("POST / HTTP/1.1", {"Host: a", "Transfer-Encoding: , chunked ,"})).framing,
            Framing::Chunked);
}

TEST(Http1Framing, RefusesTransferEncodingWithContentLength) {
  EXPECT_EQ(request_error(request("POST / HTTP/1.1", {"Host: a", "Content-Length: 5", "Transfer-Encoding: chunked"})),
            Error::TransferEncodingWithContentLength);
  EXPECT_EQ(request_error(request("POST / HTTP/1.1", {"Host: a", "Transfer-Encoding: chunked", "Content-Length: 0"})),
            Error::TransferEncodingWithContentLength);
}

TEST(Http1Framing, RefusesTransferEncodingInHttp10) {
  EXPECT_EQ(request_error(request("POST / HTTP/1.0", {"Transfer-Encoding: chunked"})), Error::TransferEncodingInHttp10);
  EXPECT_EQ(request_error(request("POST / HTTP/1.0", {"Transfer-Encoding: chunked", "Content-Length: 5"})),
            Error::TransferEncodingInHttp10);
}

TEST(Http1Framing, RefusesARequestWhoseFinalCodingIsNotChunked) {
  for (const char* v : {"xchunked", "chunked, identity", "identity", "gzip", "chunked;, gzip", "chunk", "chunked-x"}) {
    Error e = request_error(request("POST / HTTP/1.1", {"Host: a", std::string("Transfer-Encoding: ") + v}));
    EXPECT_TRUE(e == Error::TransferCodingNotChunked || e == Error::BadTransferEncoding) << v << " " << name(e);
  }
  EXPECT_EQ(request_error(request("POST / HTTP/1.1", {"Host: a", "Transfer-Encoding: xchunked"})),
            Error::TransferCodingNotChunked);
  EXPECT_EQ(request_error(request("POST / HTTP/1.1", {"Host: a", "Transfer-Encoding: chunked, identity"})),
            Error::TransferCodingNotChunked);
  // Several field lines make one list: the last one decides.
  EXPECT_EQ(request_error(request("POST / HTTP/1.1", {"Host: a", "Transfer-Encoding: chunked", "Transfer-Encoding: gzip"})),
            Error::TransferCodingNotChunked);
}

TEST(Http1Framing, RefusesChunkedTwice) {
  EXPECT_EQ(request_error(request("POST / HTTP/1.1", {"Host: a", "Transfer-Encoding: chunked, chunked"})),
            Error::ChunkedTwice);
  EXPECT_EQ(request_error(request("POST / HTTP/1.1", {"Host: a", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked"})),
            Error::ChunkedTwice);
}

TEST(Http1Framing, Answers501ToCodingsBesidesChunked) {
  Error e = request_error(request("POST / HTTP/1.1", {"Host: a", "Transfer-Encoding: gzip, chunked"}));
  EXPECT_EQ(e, Error::UnsupportedTransferCoding);
  EXPECT_EQ(status_of(e), 501);
  EXPECT_EQ(request_error(request("POST / HTTP/1.1", {"Host: a", "Transfer-Encoding: gzip;q=\"a,b\"", "Transfer-Encoding: chunked"})),
            Error::UnsupportedTransferCoding);
}

TEST(Http1Framing, RefusesMalformedTransferEncoding) {
  for (const char* v : {"", " ", ",", "\"chunked\"", "chunked;foo=bar", "chunked;", "chu nked", "gzip;=x, chunked",
                        "gzip;q, chunked", "gzip;q=\"x, chunked"}) {
    EXPECT_EQ(request_error(request("POST / HTTP/1.1", {"Host: a", std::string("Transfer-Encoding: ") + v})),
              Error::BadTransferEncoding)
        << v;
  }
}

// ---- Host -----------------------------------------------------------------------------

TEST(Http1Host, IsRequiredOnceInHttp11) {
  EXPECT_EQ(request_error(request("GET / HTTP/1.1", {})), Error::MissingHost);
  EXPECT_EQ(request_error(request("GET / HTTP/1.1", {"Host: a", "Host: b"})), Error::DuplicateHost);
  EXPECT_EQ(request_error(request("GET / HTTP/1.1", {"Host: a", "Host: a"})), Error::DuplicateHost);
  EXPECT_EQ(request_error(request("GET / HTTP/1.0", {"Host: a", "Host: a"})), Error::DuplicateHost);
  auto old = accepted(request("GET / HTTP/1.0", {}));
  EXPECT_FALSE(old.has_host_field);
  EXPECT_EQ(old.authority, "");
}

TEST(Http1Host, MustBeHostAndOptionalPort) {
  EXPECT_EQ(accepted(request("GET / HTTP/1.1", {"Host: example.com:8080"})).authority, "example.com:8080");
  EXPECT_EQ(accepted(request("GET / HTTP/1.1", {"Host: [2001:db8::1]:8080"})).authority, "[2001:db8::1]:8080");
  EXPECT_EQ(accepted(request("GET / HTTP/1.1", {"Host: 192.0.2.1"})).authority, "192.0.2.1");
  auto empty = accepted(request("GET / HTTP/1.1", {"Host:"}));
  EXPECT_TRUE(empty.has_host_field);
  EXPECT_EQ(empty.authority, "");
  for (const char* v : {"a b", "user@example.com", "example.com:99999", "example.com:8o", "[::1", "a/b", ":80", "a,b c"}) {
    EXPECT_EQ(request_error(request("GET / HTTP/1.1", {std::string("Host: ") + v})), Error::BadHost) << v;
  }
}

TEST(Http1Host, AbsoluteFormAuthorityWinsOverHost) {
  auto h = accepted(request("GET http://a.example/x HTTP/1.1", {"Host: b.example"}));
  EXPECT_EQ(h.authority, "a.example");
  EXPECT_EQ(h.host_field, "b.example");
  // Still one Host field required in HTTP/1.1 (RFC 9112 3.2).
  EXPECT_EQ(request_error(request("GET http://a.example/x HTTP/1.1", {})), Error::MissingHost);
}

// ---- connection management ------------------------------------------------------------

TEST(Http1Connection, KeepAliveDefaultsByVersion) {
  EXPECT_TRUE(accepted(request("GET / HTTP/1.1")).keep_alive);
  EXPECT_FALSE(accepted(request("GET / HTTP/1.1", {"Host: a", "Connection: close"})).keep_alive);
  EXPECT_FALSE(accepted(request("GET / HTTP/1.1", {"Host: a", "Connection: keep-alive, CLOSE"})).keep_alive);
  EXPECT_FALSE(accepted(request("GET / HTTP/1.0", {})).keep_alive);
  EXPECT_TRUE(accepted(request("GET / HTTP/1.0", {"Connection: Keep-Alive"})).keep_alive);
  EXPECT_FALSE(accepted(request("GET / HTTP/1.0", {"Connection: keep-alive", "Connection: close"})).keep_alive);
}

TEST(Http1Connection, MarksHopByHopFields) {
  auto h = accepted(request("GET / HTTP/1.1", {"Host: a", "Connection: x-private, close", "Keep-Alive: timeout=5",
                                               "Proxy-Connection: keep-alive", "TE: trailers", "Trailer: x",
                                               "Upgrade: h2c", "X-Private: 1", "x-PRIVATE: 2", "X-Public: 3"}));
  std::set<std::string> hop;
  for (const Field& f : h.fields) {
    if (f.hop_by_hop) hop.insert(std::string(f.name));
  }
  EXPECT_EQ(hop, (std::set<std::string>{"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Upgrade",
                                        "X-Private", "x-PRIVATE"}));
  EXPECT_FALSE(h.keep_alive);
}

TEST(Http1Connection, NeverLetsConnectionDropHostOrContentLength) {
  auto h = accepted(request("POST / HTTP/1.1", {"Host: a", "Content-Length: 0", "Connection: Host, Content-Length"}));
  EXPECT_FALSE(h.fields[0].hop_by_hop);
  EXPECT_FALSE(h.fields[1].hop_by_hop);
  EXPECT_TRUE(h.fields[2].hop_by_hop);
  auto te = accepted(request("POST / HTTP/1.1", {"Host: a", "Transfer-Encoding: chunked"}));
  EXPECT_TRUE(te.fields[1].hop_by_hop);
}

TEST(Http1Connection, RefusesOptionsThatAreNotTokensOrTooMany) {
  EXPECT_EQ(request_error(request("GET / HTTP/1.1", {"Host: a", "Connection: keep alive"})), Error::BadConnection);
  EXPECT_EQ(request_error(request("GET / HTTP/1.1", {"Host: a", "Connection: \"close\""})), Error::BadConnection);
  std::string many = "Connection: ";
  for (int i = 0; i < 33; ++i) many += "x" + std::to_string(i) + ",";
  EXPECT_EQ(request_error(request("GET / HTTP/1.1", {"Host: a", many})), Error::BadConnection);
  accepted(request("GET / HTTP/1.1", {"Host: a", "Connection: , close,,"}));
}

TEST(Http1Connection, SeesAnUpgradeOnlyWithConnectionUpgradeInHttp11) {
  auto ws = accepted(request("GET /chat HTTP/1.1", {"Host: a", "Connection: Upgrade", "Upgrade: websocket"}));
  EXPECT_TRUE(ws.upgrade);
  EXPECT_FALSE(accepted(request("GET / HTTP/1.1", {"Host: a", "Upgrade: websocket"})).upgrade);
  EXPECT_FALSE(accepted(request("GET / HTTP/1.1", {"Host: a", "Connection: upgrade"})).upgrade);
  EXPECT_FALSE(accepted(request("GET / HTTP/1.0", {"Connection: upgrade", "Upgrade: websocket"})).upgrade);
}

TEST(Http1Expect, Recognises100ContinueAndRefusesOtherExpectations) {
  EXPECT_TRUE(accepted(request("POST / HTTP/1.1", {"Host: a", "Expect: 100-continue", "Content-Length: 1"})).expect_continue);
  EXPECT_TRUE(accepted(request("POST / HTTP/1.1", {"Host: a", "Expect: 100-Continue"})).expect_continue);
  // RFC 9110 10.1.1: ignored in HTTP/1.0.
  EXPECT_FALSE(accepted(request("POST / HTTP/1.0", {"Expect: 100-continue"})).expect_continue);
  for (const char* v : {"200-ok", "100-continue, foo", "100-continue=1", "\"100-continue\""}) {
    Error e = request_error(request("POST / HTTP/1.1", {"Host: a", std::string("Expect: ") + v}));
    EXPECT_EQ(e, Error::ExpectationFailed) << v;
    EXPECT_EQ(status_of(e), 417);
  }
}

// ---- responses ------------------------------------------------------------------------

ResponseHead response_ok(std::string_view raw, Method method = Method::Get) {
  auto p = parse_response(raw, method);
  EXPECT_EQ(p.result.status, ParseStatus::Done) << raw << " -> " << name(p.result.error);
  return p.head;
}

Error response_error(std::string_view raw, Method method = Method::Get) {
  auto p = parse_response(raw, method);
  EXPECT_EQ(p.result.status, ParseStatus::Error) << raw;
  return p.result.error;
}

TEST(Http1Response, ParsesTheStatusLine) {
  const std::string raw = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
  auto p = parse_response(raw);
  ASSERT_EQ(p.result.status, ParseStatus::Done);
  EXPECT_EQ(p.result.consumed, raw.size() - 5);
  EXPECT_EQ(p.head.status, 200);
  EXPECT_EQ(p.head.reason, "OK");
  EXPECT_EQ(p.head.version, Version::Http11);
  EXPECT_EQ(p.head.framing, Framing::Length);
  EXPECT_EQ(p.head.content_length, 5u);
  EXPECT_TRUE(p.head.keep_alive);
  EXPECT_EQ(response_ok("HTTP/1.1 404 Not  Found \x80\r\nContent-Length: 0\r\n\r\n").reason, "Not  Found \x80");
  EXPECT_EQ(response_ok("HTTP/1.1 204 \r\n\r\n").reason, "");
  EXPECT_EQ(response_ok("HTTP/1.1 204\r\n\r\n").status, 204);
}

TEST(Http1Response, RefusesMalformedStatusLines) {
  for (const char* raw : {"HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n", "HTTP/1.1  200 OK\r\n\r\n",
                          "HTTP/1.1\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n", "HTTP/1.1 200\tOK\r\n\r\n",
                          "HTTP/1.1 200 O\x01K\r\n\r\n", "\r\n\r\n"}) {
    EXPECT_EQ(response_error(raw), Error::BadStatusLine) << raw;
  }
  EXPECT_EQ(response_error("HTTP/1.1 099 Weird\r\n\r\n"), Error::BadStatusCode);
  EXPECT_EQ(response_error("HTTP/1.1 600 Weird\r\n\r\n"), Error::BadStatusCode);
  EXPECT_EQ(response_error("HTTP/2.0 200 OK\r\n\r\n"), Error::VersionNotSupported);
  EXPECT_EQ(response_error("HTTP/2 200 OK\r\n\r\n"), Error::BadVersion);
  EXPECT_EQ(response_error("ICY 200 OK\r\n\r\n"), Error::BadVersion);
  EXPECT_EQ(response_error("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"), Error::BareLf);
  EXPECT_EQ(response_error("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"), Error::ObsFold);
}

TEST(Http1Response, HasNoBodyForHead204304And1xx) {
  EXPECT_EQ(response_ok("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", Method::Head).framing, Framing::None);
  EXPECT_EQ(response_ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", Method::Head).framing, Framing::None);
  EXPECT_EQ(response_ok("HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n").framing, Framing::None);
  EXPECT_EQ(response_ok("HTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\n\r\n").framing, Framing::None);
  EXPECT_EQ(response_ok("HTTP/1.1 100 Continue\r\n\r\n").framing, Framing::None);
  EXPECT_EQ(response_ok("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n").framing, Framing::None);
  EXPECT_TRUE(response_ok("HTTP/1.1 204 No Content\r\n\r\n").keep_alive);
}

TEST(Http1Response, TunnelsAfter2xxToConnectAnd101) {
  EXPECT_EQ(response_ok("HTTP/1.1 200 Connection Established\r\n\r\n", Method::Connect).framing, Framing::Tunnel);
  EXPECT_EQ(response_ok("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", Method::Connect).framing, Framing::Tunnel);
  EXPECT_EQ(response_ok("HTTP/1.1 407 Auth\r\nContent-Length: 5\r\n\r\n", Method::Connect).framing, Framing::Length);
  auto up = response_ok("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n");
  EXPECT_EQ(up.framing, Framing::Tunnel);
  EXPECT_FALSE(up.keep_alive);
}

TEST(Http1Response, ReadsChunkedLengthOrUntilClose) {
  auto chunked = response_ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
  EXPECT_EQ(chunked.framing, Framing::Chunked);
  EXPECT_TRUE(chunked.keep_alive);
  EXPECT_FALSE(chunked.transfer_codings_besides_chunked);
  auto gzip = response_ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
  EXPECT_EQ(gzip.framing, Framing::Chunked);
  EXPECT_TRUE(gzip.transfer_codings_besides_chunked);
  // RFC 9112 6.3: a response whose final coding is not chunked runs until close.
  auto raw = response_ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n");
  EXPECT_EQ(raw.framing, Framing::UntilClose);
  EXPECT_FALSE(raw.keep_alive);
  auto none = response_ok("HTTP/1.1 200 OK\r\n\r\n");
  EXPECT_EQ(none.framing, Framing::UntilClose);
  EXPECT_FALSE(none.keep_alive);
}

TEST(Http1Response, LetsChunkedWinOverContentLengthButClosesAfter) {
  auto both = response_ok("HTTP/1.1 200 OK\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n");
  EXPECT_EQ(both.framing, Framing::Chunked);
  EXPECT_FALSE(both.keep_alive);
}

TEST(Http1Response, RefusesAmbiguousResponseFraming) {
  EXPECT_EQ(response_error("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), Error::TransferEncodingInHttp10);
  EXPECT_EQ(response_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), Error::ChunkedTwice);
  EXPECT_EQ(response_error("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Error::ConflictingContentLength);
  EXPECT_EQ(response_error("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"), Error::BadContentLength);
}

TEST(Http1Response, KeepAliveFollowsVersionAndConnection) {
  EXPECT_FALSE(response_ok("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive);
  EXPECT_TRUE(response_ok("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n").keep_alive);
  EXPECT_FALSE(response_ok("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keep_alive);
  auto h = response_ok("HTTP/1.1 200 OK\r\nConnection: x-a\r\nX-A: 1\r\nContent-Length: 0\r\n\r\n");
  EXPECT_TRUE(h.fields[1].hop_by_hop);
}

TEST(Http1Response, ParsesTheFinalResponseAfterAnInterimOne) {
  const std::string raw = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
  ResponseParser parser;
  ResponseHead head;
  auto r = parser.feed(raw, Method::Post, head);
  ASSERT_EQ(r.status, ParseStatus::Done);
  EXPECT_EQ(head.status, 100);
  parser.reset();
  auto final_response = parser.feed(std::string_view(raw).substr(r.consumed), Method::Post, head);
  ASSERT_EQ(final_response.status, ParseStatus::Done);
  EXPECT_EQ(head.status, 201);
  EXPECT_EQ(r.consumed + final_response.consumed, raw.size());
}

TEST(Http1Response, DoesNotSkipEmptyLinesBeforeTheStatusLine) {
  EXPECT_EQ(response_error("\r\nHTTP/1.1 200 OK\r\n\r\n"), Error::BadStatusLine);
}

// ---- errors ---------------------------------------------------------------------------

TEST(Http1Errors, EveryKindHasAStatusAReasonAndAName) {
  std::set<std::string> reasons, names;
  for (int i = 0; i <= static_cast<int>(Error::TruncatedBody); ++i) {
    const auto e = static_cast<Error>(i);
    const int status = status_of(e);
    EXPECT_TRUE(status == 400 || status == 414 || status == 417 || status == 431 || status == 501 || status == 505);
    EXPECT_TRUE(reasons.insert(to_string(e)).second) << "two kinds share the reason " << to_string(e);
    EXPECT_TRUE(names.insert(name(e)).second) << name(e);
    EXPECT_STRNE(name(e), "Unknown");
  }
  EXPECT_STREQ(name(Error::BareLf), "BareLf");
  EXPECT_STREQ(to_string(Error::TransferEncodingWithContentLength), "both Transfer-Encoding and Content-Length");
}

}  // namespace
}  // namespace hafront::proxy::http1
