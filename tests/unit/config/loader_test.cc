#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "config/config.h"

namespace hafront::config {
namespace {

LoadResult load(const std::string& text) {
  LoadOptions o;
  o.base_dir = std::string(HAFRONT_SOURCE_DIR) + "/config";
  return load_string(text, "test.yaml", o);
}

std::string errors_of(const LoadResult& r) {
  std::string out;
  for (const auto& d : r.diagnostics) out += d.format() + "\n";
  return out;
}

const char* kMinimal = "cluster: {name: c}\n";

TEST(Loader, MinimalConfigGetsDefaults) {
  auto r = load(kMinimal);
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.config->cluster.name, "c");
  EXPECT_EQ(r.config->cluster.mode, ClusterMode::Standalone);
  EXPECT_EQ(r.config->admin.socket, "/run/hafront/hafrontd.sock");
  EXPECT_EQ(r.config->proxy.workers, 0u);
  EXPECT_EQ(r.config->sha256.size(), 64u);
}

TEST(Loader, ReadsTheQuickstartModel) {
  auto r = load_file(std::string(HAFRONT_SOURCE_DIR) + "/config/quickstart.yaml");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const Config& c = *r.config;
  ASSERT_EQ(c.vips.size(), 1u);
  EXPECT_EQ(c.vips[0].address.str(), "127.0.0.10/32");
  ASSERT_EQ(c.services.size(), 2u);
  const Service& api = c.services[0];
  EXPECT_EQ(api.mode, ServiceMode::Http);
  ASSERT_EQ(api.listen.size(), 1u);
  EXPECT_EQ(api.listen[0].vip, "front");
  EXPECT_EQ(api.listen[0].endpoint.str(), "127.0.0.10:8080");  // resolved through the VIP
  EXPECT_EQ(api.timeouts.connect, Duration{2000});
  EXPECT_EQ(api.timeouts.queue, Duration{5000});  // default kept
  EXPECT_EQ(c.services[1].balance, Balance::SingleWriter);
  EXPECT_EQ(c.services[1].timeouts.client, Duration{90 * 60'000});
  ASSERT_EQ(c.checks.size(), 1u);
  EXPECT_EQ(c.checks[0].kind, CheckKind::Http);
  EXPECT_EQ(c.checks[0].http.path, "/healthcheck");
}

TEST(Loader, FenceDeviceParametersAndSecrets) {
  auto r = load_file(std::string(HAFRONT_SOURCE_DIR) + "/config/openstack-controllers.yaml");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const auto& d = r.config->fence_devices.at("ipmi-ctrl-0");
  EXPECT_EQ(d.agent, "fence_ipmilan");
  EXPECT_EQ(d.params.at("ip"), "10.0.0.10");
  EXPECT_EQ(d.params.at("lanplus"), "1");  // true -> 1
  EXPECT_EQ(d.params.count("password"), 0u);  // never inline
  ASSERT_EQ(d.secrets.count("password"), 1u);
  EXPECT_TRUE(std::filesystem::path(d.secrets.at("password").path).is_absolute());
  EXPECT_TRUE(d.secrets.at("password").path.ends_with("config/secrets/ipmi.pw"));
  const Node* n = r.config->find_node("ctrl-0");
  ASSERT_NE(n, nullptr);
  ASSERT_EQ(n->fencing.size(), 2u);
  EXPECT_EQ(n->fencing[1][0].device, "pdu-a");
  EXPECT_EQ(n->fencing[1][0].plug, "3");
}

TEST(Loader, SecretValuesNeverAppearInDiagnostics) {
  // Even when the file is wrong around it, no secret file's content is read.
  auto r = load("cluster: {name: c}\nfence_devices:\n  d: {agent: fence_ipmilan, password: hunter2}\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(errors_of(r).find("hunter2"), std::string::npos) << errors_of(r);
  EXPECT_NE(errors_of(r).find("password_file"), std::string::npos);
}

TEST(Loader, EveryErrorIsReportedInFileOrder) {
  auto r = load(
      "cluster: {name: c, mode: bogus}\n"
      "vips:\n"
      "  v: {address: 10.0.0.1, interface: lo}\n"
      "services:\n"
      "  s: {listen: [v:80], servers: [{name: a, address: 10.0.0.2:0}], retries: 99}\n");
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(r.error_count(), 4u) << errors_of(r);
  EXPECT_EQ(r.diagnostics[0].line, 1);
  EXPECT_EQ(r.diagnostics[0].column, 26);
  EXPECT_EQ(r.diagnostics[1].line, 3);
  EXPECT_EQ(r.diagnostics[2].line, 5);
  EXPECT_LT(r.diagnostics[2].column, r.diagnostics[3].column);
}

TEST(Loader, WarnsButAcceptsTwoNodesWithoutTwoNode) {
  auto r = load(
      "cluster:\n  name: c\n  mode: corosync\n  nodes:\n"
      "    - {name: a, id: 1, address: 10.0.0.1, fencing: [[f]]}\n"
      "    - {name: b, id: 2, address: 10.0.0.2, fencing: [[f]]}\n"
      "fence_devices:\n  f: {agent: fence_dummy}\n");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_EQ(r.diagnostics[0].severity, Diagnostic::Severity::Warning);
  EXPECT_NE(r.diagnostics[0].format().find("warning: "), std::string::npos);
}

TEST(Loader, ServicePoolLimits) {
  auto r = load(
      "cluster: {name: c}\n"
      "services:\n"
      "  a:\n"
      "    listen: [127.0.0.1:80]\n"
      "    maxqueue: 200\n"
      "    servers: [{name: s1, address: 10.0.0.2:80, weight: 3, maxconn: 50},\n"
      "              {name: s2, address: 10.0.0.3:80, backup: true}]\n"
      "  b: {listen: [127.0.0.1:81], servers: [{name: s1, address: 10.0.0.2:81}]}\n");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const Service* a = r.config->find_service("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->maxqueue, 200u);
  ASSERT_EQ(a->servers.size(), 2u);
  EXPECT_EQ(a->servers[0].weight, 3u);
  EXPECT_EQ(a->servers[0].maxconn, 50u);
  EXPECT_FALSE(a->servers[1].maxconn.has_value());
  EXPECT_TRUE(a->servers[1].backup);
  const Service* b = r.config->find_service("b");
  ASSERT_NE(b, nullptr);
  EXPECT_FALSE(b->maxqueue.has_value());  // default: no limit but the queue time-out
  EXPECT_EQ(b->retries, 3u);
  EXPECT_TRUE(b->redispatch);
}

TEST(Loader, DataPlaneKeys) {
  auto r = load(
      "cluster: {name: c}\n"
      "proxy: {workers: 2, io_backend: epoll, access_log: logs/access.log}\n"
      "services:\n"
      "  a:\n"
      "    listen: [127.0.0.1:80]\n"
      "    timeouts: {idle: 90s}\n"
      "    servers: [{name: s1, address: 10.0.0.2:80, proxy_protocol: v2}]\n");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.config->proxy.workers, 2u);
  EXPECT_EQ(r.config->proxy.io_backend, IoBackendChoice::Epoll);
  // Relative to the config file's folder, like every path of the file.
  EXPECT_EQ(r.config->proxy.access_log, std::string(HAFRONT_SOURCE_DIR) + "/config/logs/access.log");
  EXPECT_EQ(r.config->find_service("a")->timeouts.idle, Duration{90'000});
  EXPECT_EQ(r.config->find_service("a")->servers[0].proxy_protocol, ProxyProtocol::V2);
}

TEST(Loader, DataPlaneDefaults) {
  auto r = load(
      "cluster: {name: c}\n"
      "services: {a: {listen: [127.0.0.1:80], servers: [{name: s1, address: 10.0.0.2:80}]}}\n");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.config->proxy.io_backend, IoBackendChoice::Auto);
  EXPECT_EQ(r.config->proxy.access_log, "");  // off
  EXPECT_EQ(r.config->find_service("a")->timeouts.idle, Duration{0});
  EXPECT_EQ(load("cluster: {name: c}\nproxy: {access_log: stderr}\n").config->proxy.access_log, "stderr");
  EXPECT_EQ(load("cluster: {name: c}\nproxy: {access_log: 'off'}\n").config->proxy.access_log, "");
}

TEST(LoaderBadInput, DataPlaneKeys) {
  auto r = load("cluster: {name: c}\nproxy: {io_backend: uring, access_log: ''}\n");
  ASSERT_FALSE(r.ok());
  std::string e = errors_of(r);
  EXPECT_NE(e.find("test.yaml:2:21: proxy.io_backend: 'uring' is not one of: auto, io_uring, epoll"), std::string::npos) << e;
  EXPECT_NE(e.find("proxy.access_log: expected a file path, got an empty text"), std::string::npos) << e;
  r = load(
      "cluster: {name: c}\n"
      "services: {a: {listen: [127.0.0.1:80], timeouts: {idle: 5}, servers: [{name: s1, address: 10.0.0.2:80}]}}\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(errors_of(r).find("services.a.timeouts.idle: expected a duration with a unit"), std::string::npos)
      << errors_of(r);
}

TEST(LoaderBadInput, MaxqueueOutOfRange) {
  auto r = load(
      "cluster: {name: c}\n"
      "services:\n"
      "  a: {listen: [127.0.0.1:80], maxqueue: 1000001, servers: [{name: s1, address: 10.0.0.2:80}]}\n");
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(r.error_count(), 1u) << errors_of(r);
  EXPECT_EQ(r.diagnostics[0].line, 3);
  EXPECT_NE(r.diagnostics[0].message.find("services.a.maxqueue: 1000001 is out of range (1..1000000)"),
            std::string::npos)
      << errors_of(r);
}

TEST(LoaderBadInput, EmptyFile) {
  auto r = load("");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.diagnostics[0].format(), "test.yaml:1:1: the file is empty; expected a mapping with at least a 'cluster' section");
}

TEST(LoaderBadInput, BinaryFile) {
  std::string bin("\x7f" "ELF\x02\x01\x01\x00\x00\x00", 10);
  auto r = load(bin);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.diagnostics[0].message.find("binary"), std::string::npos);
}

TEST(LoaderBadInput, InvalidUtf8) {
  auto r = load("cluster: {name: \xff\xfe}\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.diagnostics[0].line, 1);
  EXPECT_EQ(r.diagnostics[0].column, 17);
}

TEST(LoaderBadInput, TenMegabytes) {
  std::string big = "cluster: {name: c}\n" + std::string(10 * 1024 * 1024, '#');
  auto r = load(big);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.diagnostics[0].message.find("at most 4 MiB"), std::string::npos);
}

TEST(LoaderBadInput, TruncatedFile) {
  auto r = load("cluster:\n  name: c\nservices:\n  s: {listen: [127.0.0.1:80], servers: [{name: a, addr");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.diagnostics[0].message.find("YAML syntax error"), std::string::npos);
}

TEST(LoaderBadInput, DeepNestingIsRefusedNotCrashing) {
  auto r = load("cluster: " + std::string(100000, '['));
  ASSERT_FALSE(r.ok());
  auto r2 = load("cluster: " + std::string(5000, '{'));
  ASSERT_FALSE(r2.ok());
}

TEST(LoaderBadInput, AliasBombIsBounded) {
  // Aliases nest through the schema's lists: 1000 nodes x 100 levels x 100 devices is 10^7
  // values to check from a few kilobytes of text. The visit budget stops it.
  std::string level = "&l [d";
  for (int i = 0; i < 99; ++i) level += ", d";
  level += "]";
  std::string fencing = "&f [" + level;
  for (int i = 0; i < 99; ++i) fencing += ", *l";
  fencing += "]";
  std::string text = "cluster:\n  name: c\n  mode: corosync\n  nodes:\n    - &n {name: a, id: 1, address: 10.0.0.1, fencing: " +
                     fencing + "}\n";
  for (int i = 0; i < 999; ++i) text += "    - *n\n";
  auto r = load(text);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(errors_of(r).find("too many nodes"), std::string::npos) << errors_of(r).substr(0, 2000);
  EXPECT_LT(r.diagnostics.size(), 5000u);  // bounded output too
}

TEST(LoaderBadInput, MultipleDocuments) {
  auto r = load("cluster: {name: c}\n---\ncluster: {name: d}\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.diagnostics[0].line, 2);  // the second document's '---'
}

TEST(LoaderBadInput, StrayTopLevelCommaIsASyntaxErrorNotAHang) {
  // yaml-cpp 0.7's LoadAll() loops forever on these (jbeder/yaml-cpp#1040).
  for (const char* text : {",", "[a],b", "cluster: {name: c}\n,\n"}) {
    auto r = load(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(r.diagnostics[0].message.find("YAML syntax error"), std::string::npos) << r.diagnostics[0].format();
  }
}

TEST(LoaderBadInput, MissingFile) {
  auto r = load_file("/nonexistent/hafront.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.diagnostics[0].format(), "/nonexistent/hafront.yaml:1:1: cannot open the config file: no such file");
}

TEST(LoaderBadInput, DirectoryInsteadOfFile) {
  auto r = load_file("/tmp");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.diagnostics[0].message.find("not a regular file"), std::string::npos);
}

TEST(LoaderBadInput, MissingSecretFile) {
  auto r = load("cluster: {name: c}\nfence_devices:\n  d: {agent: fence_ipmilan, password_file: /nonexistent/pw}\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.diagnostics[0].format(),
            "test.yaml:3:44: fence_devices.d.password_file: cannot use secret file '/nonexistent/pw': No such file or directory");
}

TEST(Loader, HealthKeysHaveDefaults) {
  auto r = load("cluster: {name: c}\nvips:\n  v: {address: 192.0.2.1/24, interface: eth0}\nservices:\n"
                "  s:\n    listen: [v:80]\n    servers: [{name: a, address: 192.0.2.10:80}]\n");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const Service& s = r.config->services[0];
  EXPECT_EQ(s.passive, PassiveOptions{});
  EXPECT_EQ(s.passive.connect_failures, 1u);
  EXPECT_EQ(s.panic_threshold_percent, 50u);
  EXPECT_EQ(r.config->vips[0].health_gate, HealthGate::All);
  EXPECT_FALSE(r.config->alerts.webhook);
  EXPECT_FALSE(r.config->alerts.exec);
  EXPECT_EQ(r.config->alerts.max_per_minute, 20u);
}

TEST(Loader, ReadsPassivePanicGateAndAlerts) {
  auto r = load(
      "cluster: {name: c}\nvips:\n  v: {address: 192.0.2.1/24, interface: eth0, health_gate: any}\nservices:\n"
      "  s:\n    listen: [v:80]\n    passive: {connect_failures: 2, resets: 0, http_5xx: 5, window: 5s, backoff: 500ms, "
      "max_backoff: 10s}\n    panic_threshold: 0%\n    servers: [{name: a, address: 192.0.2.10:80}]\n"
      "alerts:\n  webhook: {url: 'http://[::1]:9000/hooks/hafront?x=1', timeout: 1s}\n"
      "  exec: {command: [/usr/local/bin/page, --team, db], timeout: 3s}\n  max_per_minute: 5\n  group_wait: 0s\n");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const Service& s = r.config->services[0];
  EXPECT_EQ(s.passive.connect_failures, 2u);
  EXPECT_EQ(s.passive.resets, 0u);
  EXPECT_EQ(s.passive.http_5xx, 5u);
  EXPECT_EQ(s.passive.window, Duration{5000});
  EXPECT_EQ(s.passive.backoff, Duration{500});
  EXPECT_EQ(s.passive.max_backoff, Duration{10000});
  EXPECT_EQ(s.panic_threshold_percent, 0u);
  EXPECT_EQ(r.config->vips[0].health_gate, HealthGate::Any);
  const AlertOptions& a = r.config->alerts;
  ASSERT_TRUE(a.webhook);
  EXPECT_EQ(a.webhook->host, "::1");
  EXPECT_EQ(a.webhook->port, 9000);
  EXPECT_EQ(a.webhook->target, "/hooks/hafront?x=1");
  EXPECT_EQ(a.webhook->timeout, Duration{1000});
  ASSERT_TRUE(a.exec);
  EXPECT_EQ(a.exec->command, (std::vector<std::string>{"/usr/local/bin/page", "--team", "db"}));
  EXPECT_EQ(a.max_per_minute, 5u);
  EXPECT_EQ(a.group_wait, Duration{0});
}

TEST(Loader, WebhookUrlForms) {
  auto url = [](const std::string& u) {
    return load("cluster: {name: c}\nalerts:\n  webhook: {url: '" + u + "'}\n");
  };
  auto r = url("http://alerts.example.com");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.config->alerts.webhook->host, "alerts.example.com");
  EXPECT_EQ(r.config->alerts.webhook->port, 80);
  EXPECT_EQ(r.config->alerts.webhook->target, "/");
  for (const char* bad : {"ftp://x/", "http://", "http://a b/", "http://[::1/", "http://1.2.3.256/", "http://x:0/",
                          "http://user@x/", "https://x/", "http://::1/"}) {
    auto b = url(bad);
    EXPECT_FALSE(b.ok()) << bad;
    EXPECT_EQ(b.error_count(), 1u) << bad << "\n" << errors_of(b);
    EXPECT_EQ(b.diagnostics.empty() ? 0 : b.diagnostics[0].line, 3) << bad;
  }
}

}  // namespace
}  // namespace hafront::config
