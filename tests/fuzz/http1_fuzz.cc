// libFuzzer target: the HTTP/1.1 parsers take arbitrary bytes from the network. Besides
// "no crash, no sanitizer report", it checks what a connection relies on: `consumed` stays
// within the input, and the outcome does not depend on how the bytes were split into reads
// (one read, two reads cut at a position taken from the input, one byte per read).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/http1.h"

namespace {

namespace http1 = hafront::proxy::http1;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

std::string fields_of(const std::vector<http1::Field>& fields) {
  std::string s;
  for (const auto& f : fields) {
    s += f.name;
    s += '\0';
    s += f.value;
    s += f.hop_by_hop ? '\1' : '\2';
  }
  return s;
}

std::string describe(const http1::ParseResult& r, const http1::RequestHead& h) {
  std::string s = std::to_string(static_cast<int>(r.status)) + "/" + http1::name(r.error) + "/" +
                  std::to_string(r.consumed);
  if (r.status != http1::ParseStatus::Done) return s;
  s += std::string(h.method) + ' ' + std::string(h.target) + ' ' + std::string(h.authority) + ' ' +
       std::string(h.path) + ' ' + http1::to_string(h.version) + ' ' + http1::to_string(h.framing) + ' ' +
       std::to_string(h.content_length) + (h.keep_alive ? 'k' : '-') + (h.expect_continue ? 'e' : '-') +
       (h.upgrade ? 'u' : '-');
  return s + fields_of(h.fields);
}

std::string describe(const http1::ParseResult& r, const http1::ResponseHead& h) {
  std::string s = std::to_string(static_cast<int>(r.status)) + "/" + http1::name(r.error) + "/" +
                  std::to_string(r.consumed);
  if (r.status != http1::ParseStatus::Done) return s;
  s += std::to_string(h.status) + ' ' + std::string(h.reason) + ' ' + http1::to_string(h.framing) + ' ' +
       std::to_string(h.content_length) + (h.keep_alive ? 'k' : '-');
  return s + fields_of(h.fields);
}

void check_result(const http1::ParseResult& r, size_t size) {
  check(r.consumed <= size);
  check((r.status == http1::ParseStatus::Error) == (r.error != http1::Error::None));
  check(r.status == http1::ParseStatus::Done || r.consumed == 0);
}

// Feeds `input` as reads ending at each of `cuts` and then at its end; returns what the
// parser said last. `feed` is called with the growing prefix.
template <typename Feed>
http1::ParseResult feed_in_reads(std::string_view input, std::initializer_list<size_t> cuts, Feed feed) {
  http1::ParseResult r;
  for (size_t cut : cuts) {
    if (cut > input.size()) continue;
    r = feed(input.substr(0, cut));
    if (r.status != http1::ParseStatus::NeedMore) return r;
  }
  return feed(input);
}

// A body read in one piece, or in two pieces cut at `cut`, or a byte at a time.
struct BodyOutcome {
  std::string data;
  size_t consumed = 0;
  http1::BodyStatus status = http1::BodyStatus::NeedMore;
  http1::Error error = http1::Error::None;

  bool operator==(const BodyOutcome& o) const {
    return data == o.data && consumed == o.consumed && status == o.status && error == o.error;
  }
};

BodyOutcome read_body(http1::BodyReader reader, std::string_view body, size_t cut, bool bytewise) {
  BodyOutcome out;
  size_t offset = 0;
  while (true) {
    size_t end = bytewise ? offset + 1 : (offset < cut ? cut : body.size());
    if (end > body.size()) end = body.size();
    std::string_view piece = body.substr(offset, end - offset);
    const size_t piece_size = piece.size();
    while (true) {
      http1::BodyStep step = reader.next(piece);
      check(step.consumed <= piece.size());
      out.consumed += step.consumed;
      if (step.status == http1::BodyStatus::Data) {
        check(!step.data.empty() && step.data.data() >= piece.data() &&
              step.data.data() + step.data.size() <= piece.data() + step.consumed);
        out.data += step.data;
        piece.remove_prefix(step.consumed);
        continue;
      }
      if (step.status == http1::BodyStatus::NeedMore) {
        check(step.consumed == piece.size());
        break;
      }
      check((step.status == http1::BodyStatus::Error) == (step.error != http1::Error::None));
      out.status = step.status;
      out.error = step.error;
      return out;
    }
    offset += piece_size;
    if (offset >= body.size()) return out;
  }
}

void check_body(http1::Framing framing, uint64_t length, std::string_view body, size_t cut) {
  if (framing != http1::Framing::Length && framing != http1::Framing::Chunked) return;
  const http1::BodyReader reader(framing, length);
  const BodyOutcome whole = read_body(reader, body, body.size(), false);
  check(whole.consumed <= body.size());
  check(read_body(reader, body, cut, false) == whole);
  check(read_body(reader, body, 0, true) == whole);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t cut = size ? data[0] % (size + 1) : 0;
  const size_t body_cut_seed = size > 1 ? data[1] : 0;

  // As a request.
  {
    http1::RequestParser once;
    http1::RequestHead head;
    const http1::ParseResult r = once.feed(input, head);
    check_result(r, size);
    const std::string expected = describe(r, head);

    http1::RequestParser split;
    http1::RequestHead split_head;
    const auto r2 = feed_in_reads(input, {cut}, [&](std::string_view b) { return split.feed(b, split_head); });
    check(describe(r2, split_head) == expected);

    http1::RequestParser bytewise;
    http1::RequestHead byte_head;
    http1::ParseResult r3;
    for (size_t i = 0; i <= size && r3.status == http1::ParseStatus::NeedMore; ++i) {
      r3 = bytewise.feed(input.substr(0, i), byte_head);
    }
    check(describe(r3, byte_head) == expected);

    if (r.status == http1::ParseStatus::Done) {
      const std::string_view body = input.substr(r.consumed);
      check_body(head.framing, head.content_length, body, body.empty() ? 0 : body_cut_seed % (body.size() + 1));
    }
  }

  // As a response to a GET, HEAD or CONNECT.
  {
    const http1::Method methods[] = {http1::Method::Get, http1::Method::Head, http1::Method::Connect};
    const http1::Method method = methods[size ? data[size - 1] % 3 : 0];
    http1::ResponseParser once;
    http1::ResponseHead head;
    const http1::ParseResult r = once.feed(input, method, head);
    check_result(r, size);
    http1::ResponseParser split;
    http1::ResponseHead split_head;
    const auto r2 = feed_in_reads(input, {cut}, [&](std::string_view b) { return split.feed(b, method, split_head); });
    check(describe(r2, split_head) == describe(r, head));
    if (r.status == http1::ParseStatus::Done) {
      const std::string_view body = input.substr(r.consumed);
      check_body(head.framing, head.content_length, body, body.empty() ? 0 : body_cut_seed % (body.size() + 1));
    }
  }

  // As a chunked body straight away, so the fuzzer reaches the decoder without first
  // having to build a valid head.
  check_body(http1::Framing::Chunked, 0, input, cut);
  return 0;
}
