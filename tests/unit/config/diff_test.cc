#include <gtest/gtest.h>

#include "config/config.h"

namespace hafront::config {
namespace {

std::shared_ptr<const Config> load(const std::string& text) {
  auto r = load_string(text, "t.yaml");
  EXPECT_TRUE(r.ok());
  return r.config;
}

const std::string kBase =
    "cluster: {name: c}\n"
    "services:\n"
    "  a: {listen: [127.0.0.1:80], servers: [{name: x, address: 127.0.0.1:81}]}\n"
    "  b: {listen: [127.0.0.1:90], servers: [{name: x, address: 127.0.0.1:91}]}\n";

TEST(Diff, ReportsAddedRemovedChangedByName) {
  auto old_config = load(kBase);
  auto new_config = load(
      "cluster: {name: c}\n"
      "services:\n"
      "  a: {listen: [127.0.0.1:80], servers: [{name: x, address: 127.0.0.1:82}]}\n"
      "  c: {listen: [127.0.0.1:95], servers: [{name: x, address: 127.0.0.1:91}]}\n");
  auto d = diff(*old_config, *new_config);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].section, "services");
  EXPECT_EQ(d[0].added, std::vector<std::string>{"c"});
  EXPECT_EQ(d[0].removed, std::vector<std::string>{"b"});
  EXPECT_EQ(d[0].changed, std::vector<std::string>{"a"});
}

TEST(Diff, IdenticalConfigsHaveNoDiff) {
  EXPECT_TRUE(diff(*load(kBase), *load(kBase)).empty());
}

TEST(RestartRequired, ModeClusterNameAndSocketNeedARestart) {
  auto a = load("cluster: {name: c}\n");
  EXPECT_TRUE(restart_required(*a, *load("cluster: {name: c}\nlogging: {level: debug}\n"), "n").empty());
  EXPECT_EQ(restart_required(*a, *load("cluster: {name: d}\n"), "n").size(), 1u);
  EXPECT_EQ(restart_required(*a, *load("cluster: {name: c}\nadmin: {socket: /tmp/x.sock}\n"), "n").size(), 1u);
  auto self = load("cluster: {name: c, nodes: [{name: n, id: 1, address: 127.0.0.1}]}\n");
  auto moved = load("cluster: {name: c, nodes: [{name: n, id: 2, address: 127.0.0.1}]}\n");
  EXPECT_EQ(restart_required(*self, *moved, "n").size(), 1u);
}

TEST(RestartRequired, DataPlaneSetUpNeedsARestartAccessLogDoesNot) {
  auto a = load("cluster: {name: c}\n");
  EXPECT_EQ(restart_required(*a, *load("cluster: {name: c}\nproxy: {io_backend: epoll}\n"), "n").size(), 1u);
  EXPECT_EQ(restart_required(*a, *load("cluster: {name: c}\nproxy: {buffer_size: 32KiB}\n"), "n").size(), 1u);
  EXPECT_TRUE(restart_required(*a, *load("cluster: {name: c}\nproxy: {access_log: stderr, max_connections: 10}\n"), "n")
                  .empty());
}

TEST(RestartRequired, CorosyncNodeListChangesNeedARestartFencingDoesNot) {
  const std::string head = "cluster:\n  name: c\n  mode: corosync\n  nodes:\n";
  auto two = load(head + "    - {name: a, id: 1, address: 10.0.0.1}\n    - {name: b, id: 2, address: 10.0.0.2}\n");
  auto three = load(head + "    - {name: a, id: 1, address: 10.0.0.1}\n    - {name: b, id: 2, address: 10.0.0.2}\n"
                           "    - {name: c, id: 3, address: 10.0.0.3}\n");
  auto fenced = load(head + "    - {name: a, id: 1, address: 10.0.0.1, fencing: [[f]]}\n"
                            "    - {name: b, id: 2, address: 10.0.0.2}\nfence_devices: {f: {agent: fence_dummy}}\n");
  EXPECT_EQ(restart_required(*two, *three, "a").size(), 1u);
  EXPECT_TRUE(restart_required(*two, *fenced, "a").empty());
}

}  // namespace
}  // namespace hafront::config
