#include "control/status.h"

#include <gtest/gtest.h>

namespace hafront::control {
namespace {

Status sample() {
  Status s;
  s.node = "ctrl-0";
  s.version = "0.1.0";
  s.cluster.name = "overcloud";
  s.cluster.mode = "standalone";
  s.cluster.quorate = true;
  s.cluster.members = {{"ctrl-0", 1}};
  s.vips.push_back({"internal", "192.0.2.100/24", "eth0", "auto", std::nullopt, "released", "why"});
  s.services.push_back({"keystone", "http", "roundrobin", {"internal:5000"},
                        {{"ctrl-0", "192.0.2.10:5000", "unknown", "not checked"}}});
  s.config.path = "/etc/hafront/hafront.yaml";
  s.config.sha256 = std::string(64, 'a');
  return s;
}

TEST(Status, JsonHasTheDocumentedShape) {
  auto v = to_json(sample());
  EXPECT_EQ(v.at("node").as_string(), "ctrl-0");
  EXPECT_EQ(v.at("cluster").at("mode").as_string(), "standalone");
  EXPECT_TRUE(v.at("cluster").at("quorate").as_bool());
  EXPECT_EQ(v.at("cluster").at("members").at(0).at("name").as_string(), "ctrl-0");
  const auto& vip = v.at("vips").at(0);
  for (auto key : {"name", "address", "holder", "state"}) EXPECT_TRUE(vip.as_object().contains(key)) << key;
  EXPECT_TRUE(vip.at("holder").is_null());
  const auto& srv = v.at("services").at(0).at("servers").at(0);
  for (auto key : {"name", "address", "state", "reason"}) EXPECT_TRUE(srv.as_object().contains(key)) << key;
}

TEST(Status, TextShowsWhatMatters) {
  std::string t = render_text(to_json(sample()));
  EXPECT_NE(t.find("quorate"), std::string::npos);
  EXPECT_NE(t.find("internal"), std::string::npos);
  EXPECT_NE(t.find("192.0.2.10:5000"), std::string::npos);
  EXPECT_NE(t.find("not checked"), std::string::npos);
}

TEST(Status, TextShowsAFailedReload) {
  Status s = sample();
  s.config.last_reload_ok = false;
  s.config.last_reload_at = "2026-01-01T00:00:00.000Z";
  s.config.last_reload_errors = {"f.yaml:3:5: bad"};
  std::string t = render_text(to_json(s));
  EXPECT_NE(t.find("FAILED"), std::string::npos);
  EXPECT_NE(t.find("f.yaml:3:5: bad"), std::string::npos);
}

TEST(Status, ClusterNodesShowTheirState) {
  Status s = sample();
  s.cluster.mode = "corosync";
  s.cluster.coordinator = "ctrl-0";
  s.cluster.nodes = {{"ctrl-0", 1, true, true, false, true, false, ""},
                     {"ctrl-1", 2, false, true, false, true, false, "unclean"},
                     {"ctrl-2", 3, true, true, false, false, false, ""}};
  s.cluster.fence = {"ctrl-1"};
  auto v = to_json(s);
  EXPECT_EQ(v.at("cluster").at("nodes").at(1).at("departure").as_string(), "unclean");
  EXPECT_EQ(v.at("cluster").at("coordinator").as_string(), "ctrl-0");
  std::string t = render_text(v);
  EXPECT_NE(t.find("ctrl-0      member, coordinator"), std::string::npos) << t;
  EXPECT_NE(t.find("ctrl-1      not a member, left uncleanly"), std::string::npos) << t;
  EXPECT_NE(t.find("ctrl-2      member, CONFIG MISMATCH"), std::string::npos) << t;
  EXPECT_NE(t.find("to fence: ctrl-1"), std::string::npos) << t;
}

TEST(Status, RenderingMalformedJsonDoesNotThrow) {
  EXPECT_NO_THROW(render_text(boost::json::value(nullptr)));
  EXPECT_NO_THROW(render_text(boost::json::parse(R"({"cluster":5,"vips":{"a":1},"services":[1,"x",{"servers":7}]})")));
}

}  // namespace
}  // namespace hafront::control
