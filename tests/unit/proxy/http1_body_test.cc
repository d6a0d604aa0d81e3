// Body readers: the chunked decoder (RFC 9112 7.1) and the one BodyReader interface over
// every framing. Every chunked input is also decoded split in two at every position and one
// byte at a time (http1_test_util.h), which must not change the outcome.
#include <gtest/gtest.h>

#include <string>

#include "http1_test_util.h"
#include "proxy/http1.h"

namespace hafront::proxy::http1 {
namespace {

using testing::decode_chunked;
using testing::Decoded;
using testing::read_body;
using testing::read_body_every_way;

Decoded done(std::string data, size_t consumed) {
  Decoded d;
  d.status = BodyStatus::Done;
  d.data = std::move(data);
  d.consumed = consumed;
  return d;
}

Error chunked_error(std::string_view body, const Limits& limits = {}) {
  Decoded d = decode_chunked(body, limits);
  EXPECT_EQ(d.status, BodyStatus::Error) << body << " -> " << d.describe();
  return d.error;
}

// ---- chunked --------------------------------------------------------------------------

TEST(Http1Chunked, DecodesChunksAndStopsAtTheEndOfTheMessage) {
  const std::string body = "5\r\nhello\r\n1\r\n \r\na\r\n0123456789\r\nA\r\nabcdefghij\r\n0\r\n\r\n";
  EXPECT_EQ(decode_chunked(body).describe(), done("hello 0123456789abcdefghij", body.size()).describe());
  // What follows the last chunk is the next message and is left alone.
  const std::string pipelined = body + "GET / HTTP/1.1\r\n";
  EXPECT_EQ(decode_chunked(pipelined).describe(), done("hello 0123456789abcdefghij", body.size()).describe());
}

TEST(Http1Chunked, HandsOutDataAsViewsWithoutCopying) {
  const std::string body = "5\r\nhello\r\n0\r\n\r\n";
  ChunkedDecoder decoder;
  BodyStep step = decoder.next(body);
  ASSERT_EQ(step.status, BodyStatus::Data);
  EXPECT_EQ(step.consumed, 8u);
  EXPECT_EQ(step.data.data(), body.data() + 3);
  step = decoder.next(std::string_view(body).substr(8));
  EXPECT_EQ(step.status, BodyStatus::Done);
  EXPECT_EQ(step.consumed, body.size() - 8);
  EXPECT_TRUE(decoder.done());
}

TEST(Http1Chunked, WaitsForMoreWithinAnyPart) {
  for (const char* partial : {"", "5", "5\r", "5\r\nhel", "5\r\nhello", "5\r\nhello\r", "5\r\nhello\r\n0\r\n",
                              "5;a=\"x", "0\r\nX-T: 1\r\n", "0\r\n\r"}) {
    Decoded d = decode_chunked(partial);
    EXPECT_EQ(d.status, BodyStatus::NeedMore) << partial << " -> " << d.describe();
    EXPECT_EQ(d.consumed, std::string_view(partial).size());
  }
}

TEST(Http1Chunked, ReadsHexSizesWithLeadingZerosUpTo16Digits) {
  EXPECT_EQ(decode_chunked("000000000000000A\r\n0123456789\r\n0\r\n\r\n").data, "0123456789");
  EXPECT_EQ(decode_chunked("00\r\n\r\n").status, BodyStatus::Done);
}

TEST(Http1Chunked, RefusesMalformedSizes) {
  for (const char* body : {"0x5\r\nhello\r\n0\r\n\r\n", " 5\r\nhello\r\n", "-1\r\n", "\r\n", "g\r\n", "5g\r\n",
                           "+5\r\n", "5\t\r\n", "5 \r\n"}) {
    EXPECT_EQ(chunked_error(body), Error::BadChunkSize) << body;
  }
}

TEST(Http1Chunked, RefusesSizesThatOverflow) {
  EXPECT_EQ(chunked_error("00000000000000001\r\n"), Error::ChunkSizeTooLarge);  // 17 digits
  EXPECT_EQ(chunked_error("FFFFFFFFFFFFFFFF\r\n"), Error::ChunkSizeTooLarge);
  EXPECT_EQ(chunked_error("10000000000000000\r\n"), Error::ChunkSizeTooLarge);
  EXPECT_EQ(chunked_error("4000000000000001\r\n"), Error::ChunkSizeTooLarge);  // 2^62 + 1
  Limits small;
  small.max_content_length = 0xff;
  EXPECT_EQ(chunked_error("100\r\n", small), Error::ChunkSizeTooLarge);
  EXPECT_EQ(decode_chunked("ff\r\n" + std::string(255, 'x') + "\r\n0\r\n\r\n", small).status, BodyStatus::Done);
}

TEST(Http1Chunked, AcceptsWellFormedExtensions) {
  for (const char* line : {"5;a", "5;a=b", "5;a=\"q;,\\\"x\"", "5 ;a", "5\t;a", "5;a ;b=c", "5; a = b", "5;a=b;c",
                           "5;a=\"\"", "5;a=\"\x80\t\""}) {
    const std::string body = std::string(line) + "\r\nhello\r\n0;last\r\n\r\n";
    EXPECT_EQ(decode_chunked(body).describe(), done("hello", body.size()).describe()) << line;
  }
}

TEST(Http1Chunked, RefusesMalformedExtensions) {
  for (const char* line : {"5;", "5;=b", "5;a=", "5;a=b c", "5;a b", "5;a=\"x\"y", "5;a=@", "5;a=b ", "5;a=\"x\" ",
                           "5;a ", "5;a=\"\x01\"", "5 x", "5;;a"}) {
    EXPECT_EQ(chunked_error(std::string(line) + "\r\nhello\r\n0\r\n\r\n"), Error::BadChunkExtension) << line;
  }
}

TEST(Http1Chunked, RefusesBareLineEndingsInTheSizeLine) {
  EXPECT_EQ(chunked_error("5\nhello\r\n0\r\n\r\n"), Error::BareLf);
  EXPECT_EQ(chunked_error("5;ext\nhello\r\n0\r\n\r\n"), Error::BareLf);
  EXPECT_EQ(chunked_error("5;a=\"x\ny\"\r\nhello\r\n"), Error::BareLf);
  EXPECT_EQ(chunked_error("5\rhello\r\n0\r\n\r\n"), Error::BareCr);
  EXPECT_EQ(chunked_error("5;ext\rX\r\nhello\r\n"), Error::BareCr);
  EXPECT_EQ(chunked_error("5;a=\"x\ry\"\r\nhello\r\n"), Error::BareCr);
}

TEST(Http1Chunked, BoundsTheSizeLine) {
  Limits limits;
  limits.max_chunk_line = 16;
  const std::string fits = "5;" + std::string(14, 'e');  // 16 bytes
  EXPECT_EQ(decode_chunked(fits + "\r\nhello\r\n0\r\n\r\n", limits).status, BodyStatus::Done);
  EXPECT_EQ(chunked_error(fits + "e\r\nhello\r\n0\r\n\r\n", limits), Error::ChunkLineTooLong);
  // Default: 4 KiB, enforced before the line ends.
  EXPECT_EQ(chunked_error("5;a=" + std::string(5000, 'x')), Error::ChunkLineTooLong);
}

TEST(Http1Chunked, RequiresExactlyCrlfAfterData) {
  for (const char* body : {"5\r\nhelloX\r\n0\r\n\r\n", "5\r\nhello\n0\r\n\r\n", "5\r\nhello\rX0\r\n\r\n",
                           "5\r\nhello world\r\n0\r\n\r\n", "5\r\nhello\r\r\n0\r\n\r\n"}) {
    EXPECT_EQ(chunked_error(body), Error::MissingChunkDataCrlf) << body;
  }
}

TEST(Http1Chunked, ChecksTheTrailerSectionLikeHeaderFields) {
  ChunkedDecoder decoder;
  const std::string body = "0\r\nX-Checksum: abc\r\nX-Other:\t1 2\r\n\r\n";
  BodyStep step = decoder.next(body);
  EXPECT_EQ(step.status, BodyStatus::Done);
  EXPECT_EQ(step.consumed, body.size());
  EXPECT_EQ(decoder.trailer_fields(), 2u);
  EXPECT_EQ(decode_chunked(body).describe(), done("", body.size()).describe());

  EXPECT_EQ(chunked_error("0\r\nX: a\r\n b\r\n\r\n"), Error::ObsFold);
  EXPECT_EQ(chunked_error("0\r\n X: a\r\n\r\n"), Error::ObsFold);
  EXPECT_EQ(chunked_error("0\r\nX : a\r\n\r\n"), Error::SpaceBeforeColon);
  EXPECT_EQ(chunked_error("0\r\nX Y: a\r\n\r\n"), Error::BadFieldName);
  EXPECT_EQ(chunked_error("0\r\n: a\r\n\r\n"), Error::BadFieldName);
  EXPECT_EQ(chunked_error("0\r\nNoColon\r\n\r\n"), Error::MissingColon);
  EXPECT_EQ(chunked_error(std::string("0\r\nX: a\0b\r\n\r\n", 13)), Error::BadFieldValue);
  EXPECT_EQ(chunked_error("0\r\nX: a\nY: b\r\n\r\n"), Error::BareLf);
  EXPECT_EQ(chunked_error("0\r\nX: a\rY: b\r\n\r\n"), Error::BareCr);
  EXPECT_EQ(chunked_error("0\r\n\n"), Error::BareLf);
  EXPECT_EQ(chunked_error("0\r\n\rX"), Error::BareCr);
}

TEST(Http1Chunked, BoundsTheTrailerSection) {
  Limits limits;
  limits.max_trailer_section = 16;
  EXPECT_EQ(decode_chunked("0\r\nX: 123456789\r\n\r\n", limits).status, BodyStatus::Done);  // 12 + 2 + 2
  EXPECT_EQ(chunked_error("0\r\nX: 1234567890\r\n\r\n", limits), Error::TrailerSectionTooLarge);
  limits = {};
  limits.max_fields = 2;
  EXPECT_EQ(decode_chunked("0\r\nA: 1\r\nB: 2\r\n\r\n", limits).status, BodyStatus::Done);
  Error e = chunked_error("0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits);
  EXPECT_EQ(e, Error::TrailerSectionTooLarge);
  EXPECT_EQ(status_of(e), 431);
}

TEST(Http1Chunked, ReportsTheSameErrorOnEveryLaterCall) {
  ChunkedDecoder decoder;
  EXPECT_EQ(decoder.next("zz").error, Error::BadChunkSize);
  BodyStep again = decoder.next("5\r\nhello\r\n");
  EXPECT_EQ(again.status, BodyStatus::Error);
  EXPECT_EQ(again.error, Error::BadChunkSize);
  EXPECT_EQ(decoder.next("").status, BodyStatus::Error);
}

TEST(Http1Chunked, DecodesALargeChunkArrivingInPieces) {
  const std::string data(70000, 'z');
  const std::string body = "11170\r\n" + data + "\r\n0\r\n\r\n";
  BodyReader reader(Framing::Chunked, 0);
  std::vector<std::string_view> pieces;
  for (size_t i = 0; i < body.size(); i += 4096) pieces.push_back(std::string_view(body).substr(i, 4096));
  Decoded d = read_body(reader, pieces);
  EXPECT_EQ(d.status, BodyStatus::Done);
  EXPECT_EQ(d.data, data);
  EXPECT_EQ(d.consumed, body.size());
}

// ---- BodyReader -----------------------------------------------------------------------

TEST(Http1BodyReader, NoneEndsAtOnce) {
  BodyReader reader(Framing::None, 0);
  EXPECT_TRUE(reader.done());
  BodyStep step = reader.next("GET / HTTP/1.1\r\n");
  EXPECT_EQ(step.status, BodyStatus::Done);
  EXPECT_EQ(step.consumed, 0u);
  EXPECT_EQ(BodyReader().next("x").status, BodyStatus::Done);
}

TEST(Http1BodyReader, LengthCountsBytesAndLeavesTheRest) {
  EXPECT_EQ(read_body_every_way(BodyReader(Framing::Length, 10), "helloworld!!").describe(),
            done("helloworld", 10).describe());
  EXPECT_EQ(read_body_every_way(BodyReader(Framing::Length, 0), "next").describe(), done("", 0).describe());
  Decoded partial = read_body_every_way(BodyReader(Framing::Length, 10), "hello");
  EXPECT_EQ(partial.status, BodyStatus::NeedMore);
  EXPECT_EQ(partial.data, "hello");
}

TEST(Http1BodyReader, UntilCloseEndsOnlyAtClose) {
  BodyReader reader(Framing::UntilClose, 0);
  BodyStep step = reader.next("some bytes");
  EXPECT_EQ(step.status, BodyStatus::Data);
  EXPECT_EQ(step.data, "some bytes");
  EXPECT_EQ(reader.next("").status, BodyStatus::NeedMore);
  EXPECT_FALSE(reader.done());
  EXPECT_EQ(reader.on_close().status, BodyStatus::Done);
  EXPECT_EQ(BodyReader(Framing::Tunnel, 0).on_close().status, BodyStatus::Done);
}

TEST(Http1BodyReader, ACloseBeforeTheEndIsATruncatedBody) {
  BodyReader length(Framing::Length, 10);
  length.next("hello");
  EXPECT_EQ(length.on_close().error, Error::TruncatedBody);
  length.next("world");
  EXPECT_EQ(length.on_close().status, BodyStatus::Done);

  BodyReader chunked(Framing::Chunked, 0);
  EXPECT_EQ(chunked.next("5\r\nhello").status, BodyStatus::Data);
  EXPECT_EQ(chunked.next("\r\n").status, BodyStatus::NeedMore);
  EXPECT_EQ(chunked.on_close().error, Error::TruncatedBody);
  EXPECT_EQ(chunked.next("0\r\n\r\n").status, BodyStatus::Done);
  EXPECT_EQ(chunked.on_close().status, BodyStatus::Done);
  EXPECT_EQ(BodyReader(Framing::None, 0).on_close().status, BodyStatus::Done);
}

}  // namespace
}  // namespace hafront::proxy::http1
