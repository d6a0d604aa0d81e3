// The request-smuggling corpus: every tests/unit/proxy/smuggling/NAME.http is a raw request
// (escapes: \r \n \t \0 \\ \s \xHH; the file's own newlines are dropped), and the first
// line of NAME.expected is its verdict:
//   reject STATUS ERROR-NAME                  refused by the head parser or the body reader
//   accept FRAMING [key=value ...]            accepted; keys checked when given:
//       length     Content-Length            body       decoded body bytes, or "incomplete"
//       rest       bytes left after the message (the next pipelined request)
//       authority  the host the request is for   keep-alive  1 or 0
// Lines after the first say why. Every file is also parsed one byte at a time and its body
// decoded in every split, which must not change the verdict.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "http1_test_util.h"
#include "proxy/http1.h"

namespace hafront::proxy::http1 {
namespace {

namespace fs = std::filesystem;

const fs::path kCorpus = fs::path(HAFRONT_SOURCE_DIR) / "tests/unit/proxy/smuggling";

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Verdict {
  std::string line;                           // "reject 400 BareLf" or "accept chunked"
  std::map<std::string, std::string> facts;   // for accepted requests
};

Verdict judge(std::string_view raw) {
  Verdict v;
  auto parsed = testing::parse_request(raw);
  if (parsed.result.status == ParseStatus::Error) {
    v.line = "reject " + std::to_string(status_of(parsed.result.error)) + " " + name(parsed.result.error);
    return v;
  }
  if (parsed.result.status == ParseStatus::NeedMore) {
    v.line = "incomplete";
    return v;
  }
  const RequestHead& h = parsed.head;
  const std::string_view after_head = raw.substr(parsed.result.consumed);
  testing::Decoded body = testing::read_body_every_way(BodyReader(h.framing, h.content_length), after_head);
  if (body.status == BodyStatus::Error) {
    v.line = "reject " + std::to_string(status_of(body.error)) + " " + name(body.error);
    return v;
  }
  v.line = std::string("accept ") + to_string(h.framing);
  v.facts["length"] = std::to_string(h.content_length);
  v.facts["body"] = body.status == BodyStatus::Done ? std::to_string(body.data.size()) : "incomplete";
  v.facts["rest"] = std::to_string(after_head.size() - body.consumed);
  v.facts["authority"] = std::string(h.authority);
  v.facts["keep-alive"] = h.keep_alive ? "1" : "0";
  return v;
}

std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::vector<fs::path> corpus_files() {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(kCorpus)) {
    if (e.path().extension() == ".http") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Http1Smuggling, EveryCorpusRequestGetsItsExpectedVerdict) {
  const auto files = corpus_files();
  ASSERT_GE(files.size(), 40u) << "the smuggling corpus must hold at least 40 requests";
  size_t rejected = 0;
  for (const auto& file : files) {
    SCOPED_TRACE(file.filename().string());
    fs::path expected_file = file;
    expected_file.replace_extension(".expected");
    ASSERT_TRUE(fs::exists(expected_file)) << "missing " << expected_file.filename();
    std::string expected = read_file(expected_file);
    expected = expected.substr(0, expected.find('\n'));
    const std::vector<std::string> want = words(expected);
    ASSERT_GE(want.size(), 2u) << "first line must be a verdict: " << expected;

    const std::string raw = testing::unescape(read_file(file));
    const Verdict got = judge(raw);
    if (want[0] == "reject") {
      ++rejected;
      EXPECT_EQ(got.line, expected);
      continue;
    }
    ASSERT_EQ(want[0], "accept") << expected;
    EXPECT_EQ(got.line, "accept " + want[1]);
    for (size_t i = 2; i < want.size(); ++i) {
      const size_t eq = want[i].find('=');
      ASSERT_NE(eq, std::string::npos) << want[i];
      const std::string key = want[i].substr(0, eq);
      ASSERT_TRUE(got.facts.count(key)) << "unknown key " << key;
      EXPECT_EQ(got.facts.at(key), want[i].substr(eq + 1)) << key;
    }
  }
  EXPECT_GE(rejected, 30u);
}

TEST(Http1Smuggling, CorpusHasNoStrayFiles) {
  for (const auto& e : fs::directory_iterator(kCorpus)) {
    const auto ext = e.path().extension();
    EXPECT_TRUE(ext == ".http" || ext == ".expected") << e.path().filename();
    if (ext == ".expected") {
      fs::path http = e.path();
      http.replace_extension(".http");
      EXPECT_TRUE(fs::exists(http)) << "no request for " << e.path().filename();
    }
  }
}

}  // namespace
}  // namespace hafront::proxy::http1
