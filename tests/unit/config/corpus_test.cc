// Runs every file of tests/config/invalid/ through the loader and compares what it reports
// with the file's own "# expect: LINE:COL: SUBSTRING" header lines; and checks that every
// example in config/ is valid.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "config/config.h"

namespace hafront::config {
namespace {

namespace fs = std::filesystem;

struct Expectation {
  int line = 0;
  int column = 0;
  std::string text;
};

std::vector<Expectation> expectations_of(const fs::path& file) {
  std::ifstream in(file);
  std::vector<Expectation> out;
  std::string line;
  static const std::regex kExpect(R"(^# expect: (\d+):(\d+): (.+)$)");
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, kExpect)) out.push_back({std::stoi(m[1]), std::stoi(m[2]), m[3]});
  }
  return out;
}

std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".yaml") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

const fs::path kSource = HAFRONT_SOURCE_DIR;

TEST(InvalidCorpus, EveryFileFailsWithExactlyTheExpectedErrors) {
  auto files = files_in(kSource / "tests/config/invalid");
  ASSERT_GE(files.size(), 40u) << "the corpus must hold at least 40 invalid configs";
  for (const auto& file : files) {
    SCOPED_TRACE(file.filename().string());
    auto expected = expectations_of(file);
    ASSERT_FALSE(expected.empty()) << "no '# expect:' line";
    LoadResult r = load_file(file.string());
    std::string got;
    for (const auto& d : r.diagnostics) got += "  " + d.format() + "\n";
    EXPECT_FALSE(r.ok());
    std::vector<bool> used(r.diagnostics.size(), false);
    for (const auto& e : expected) {
      bool found = false;
      for (size_t i = 0; i < r.diagnostics.size(); ++i) {
        const Diagnostic& d = r.diagnostics[i];
        if (!used[i] && d.severity == Diagnostic::Severity::Error && d.line == e.line && d.column == e.column &&
            d.message.find(e.text) != std::string::npos) {
          used[i] = found = true;
          break;
        }
      }
      EXPECT_TRUE(found) << "expected " << e.line << ":" << e.column << ": " << e.text << "\ngot:\n" << got;
    }
    EXPECT_EQ(r.error_count(), expected.size()) << "got:\n" << got;
  }
}

TEST(ValidExamples, EveryExampleConfigIsValid) {
  auto files = files_in(kSource / "config");
  ASSERT_GE(files.size(), 3u);
  for (const auto& file : files) {
    SCOPED_TRACE(file.filename().string());
    LoadResult r = load_file(file.string());
    std::string got;
    for (const auto& d : r.diagnostics) got += d.format() + "\n";
    EXPECT_TRUE(r.ok()) << got;
  }
}

}  // namespace
}  // namespace hafront::config
