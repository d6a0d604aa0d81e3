#include "cluster/corosync_conf.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "config/config.h"

namespace hafront::cluster {
namespace {

std::shared_ptr<const config::Config> load(const std::string& text) {
  auto r = config::load_string(text, "c.yaml");
  EXPECT_TRUE(r.ok());
  return r.config;
}

const char* kTwoNodes =
    "cluster:\n  name: pair\n  mode: corosync\n  quorum: {two_node: true}\n  timings: {token: 300ms}\n"
    "  nodes:\n    - {name: a, id: 1, address: 10.0.0.1}\n    - {name: b, id: 2, address: 10.0.0.2}\n";

TEST(CorosyncConf, RendersNodelistQuorumAndTimings) {
  std::string t = render_corosync_conf(*load(kTwoNodes));
  EXPECT_NE(t.find("    cluster_name: pair\n"), std::string::npos);
  EXPECT_NE(t.find("    token: 300\n    token_coefficient: 0\n"), std::string::npos);
  EXPECT_NE(t.find("knet_ping_interval: 200\n"), std::string::npos);  // never below knet's resolution
  EXPECT_NE(t.find("knet_ping_timeout: 800\n"), std::string::npos);
  EXPECT_NE(t.find("    node {\n        ring0_addr: 10.0.0.2\n        nodeid: 2\n        name: b\n    }\n"),
            std::string::npos);
  EXPECT_NE(t.find("    two_node: 1\n    wait_for_all: 1\n"), std::string::npos);
  EXPECT_NE(t.find("crypto_cipher: aes256"), std::string::npos);
}

TEST(CorosyncConf, OneOptionPerLineAndBalancedBraces) {
  std::string t = render_corosync_conf(*load(kTwoNodes), CorosyncConfOptions{false});
  EXPECT_NE(t.find("crypto_cipher: none"), std::string::npos);
  int depth = 0;
  for (char c : t) {
    depth += c == '{' ? 1 : c == '}' ? -1 : 0;
    ASSERT_GE(depth, 0);
  }
  EXPECT_EQ(depth, 0);
  // Corosync's parser wants one option per line: no line holds two "key: value" pairs.
  std::istringstream in(t);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line[line.find_first_not_of(' ') == std::string::npos ? 0 : line.find_first_not_of(' ')] == '#')
      continue;
    EXPECT_LE(std::count(line.begin(), line.end(), ':'), 1) << line;
  }
}

}  // namespace
}  // namespace hafront::cluster
