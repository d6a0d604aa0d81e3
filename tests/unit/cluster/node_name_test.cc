#include <gtest/gtest.h>

#include "cluster/cluster.h"
#include "config/config.h"
#include "config/units.h"

namespace hafront::cluster {
namespace {

std::shared_ptr<const config::Config> three_nodes() {
  auto r = config::load_string(
      "cluster:\n  name: c\n  mode: corosync\n  nodes:\n"
      "    - {name: a, id: 1, address: 10.0.0.1}\n"
      "    - {name: b, id: 2, address: 10.0.0.2}\n"
      "    - {name: c, id: 3, address: 10.0.0.3}\n",
      "t.yaml");
  EXPECT_TRUE(r.ok());
  return r.config;
}

TEST(NodeName, ExplicitNameMustExist) {
  auto c = three_nodes();
  std::string err;
  EXPECT_EQ(resolve_node_name(*c, std::string("b"), {}, "host", err), "b");
  EXPECT_FALSE(resolve_node_name(*c, std::string("zz"), {}, "host", err));
  EXPECT_NE(err.find("not in cluster.nodes"), std::string::npos);
}

TEST(NodeName, FoundByLocalAddress) {
  auto c = three_nodes();
  std::string err;
  std::vector<config::Address> local = {*config::parse_address("127.0.0.1"), *config::parse_address("10.0.0.3")};
  EXPECT_EQ(resolve_node_name(*c, std::nullopt, local, "host", err), "c");
}

TEST(NodeName, AmbiguousOrUnknownIsAnError) {
  auto c = three_nodes();
  std::string err;
  std::vector<config::Address> both = {*config::parse_address("10.0.0.1"), *config::parse_address("10.0.0.2")};
  EXPECT_FALSE(resolve_node_name(*c, std::nullopt, both, "host", err));
  EXPECT_NE(err.find("several"), std::string::npos);
  EXPECT_FALSE(resolve_node_name(*c, std::nullopt, {}, "host", err));
  EXPECT_NE(err.find("--node"), std::string::npos);
  EXPECT_EQ(resolve_node_name(*c, std::nullopt, {}, "b", err), "b");  // by host name
}

TEST(NodeName, StandaloneUsesItsOneNodeOrTheHostName) {
  std::string err;
  auto none = config::load_string("cluster: {name: c}\n", "t.yaml").config;
  EXPECT_EQ(resolve_node_name(*none, std::nullopt, {}, "myhost", err), "myhost");
  auto one = config::load_string("cluster: {name: c, nodes: [{name: solo, id: 1, address: 127.0.0.1}]}\n", "t.yaml").config;
  EXPECT_EQ(resolve_node_name(*one, std::nullopt, {}, "myhost", err), "solo");
}

TEST(StandaloneView, IsAlwaysQuorateWithItself) {
  auto v = standalone_view("n", 7);
  EXPECT_TRUE(v.quorate);
  ASSERT_EQ(v.members.size(), 1u);
  EXPECT_EQ(v.members[0].id, 7u);
}

}  // namespace
}  // namespace hafront::cluster
