// Service health and root causes: chains, diamonds, several roots, folding.
#include "health/root_cause.h"

#include <gtest/gtest.h>

namespace hafront::health {
namespace {

ServiceFacts svc(std::string name, ServiceState state, std::vector<std::string> deps = {}, std::string reason = "") {
  ServiceFacts f;
  f.name = std::move(name);
  f.state = state;
  f.depends_on = std::move(deps);
  f.reason = reason.empty() && state == ServiceState::Down ? "no usable server: x down" : reason;
  return f;
}

const ServiceVerdict& find(const std::vector<ServiceVerdict>& v, const std::string& name) {
  for (const auto& x : v) {
    if (x.name == name) return x;
  }
  throw std::runtime_error("no verdict for " + name);
}

using S = ServiceState;
using Names = std::vector<std::string>;

TEST(RootCause, AChainNamesTheDeepestDownService) {
  std::vector<ServiceFacts> f = {svc("nova", S::Down, {"keystone"}), svc("keystone", S::Down, {"galera"}),
                                 svc("galera", S::Down, {}, "no eligible writer: ctrl-0 wsrep_local_state 2")};
  auto v = find_root_causes(f);
  EXPECT_EQ(find(v, "nova").roots, Names{"galera"});
  EXPECT_EQ(find(v, "keystone").roots, Names{"galera"});
  EXPECT_EQ(find(v, "galera").roots, Names{"galera"});
  EXPECT_EQ(find(v, "nova").text, "nova: down — root cause: galera: down — no eligible writer: ctrl-0 wsrep_local_state 2");
  EXPECT_EQ(find(v, "galera").text, "galera: down — no eligible writer: ctrl-0 wsrep_local_state 2");
  EXPECT_EQ(find(v, "galera").affected, (Names{"nova", "keystone"}));
  EXPECT_TRUE(find(v, "nova").affected.empty());
}

TEST(RootCause, AnUpDependencyIsNotACause) {
  std::vector<ServiceFacts> f = {svc("keystone", S::Down, {"galera"}), svc("galera", S::Up)};
  auto v = find_root_causes(f);
  EXPECT_EQ(find(v, "keystone").roots, Names{"keystone"});
  EXPECT_TRUE(find(v, "galera").roots.empty());
  // A dependency that is only degraded or unknown is not down either.
  f[1].state = S::Degraded;
  EXPECT_EQ(find(find_root_causes(f), "keystone").roots, Names{"keystone"});
  f[1].state = S::Unknown;
  EXPECT_EQ(find(find_root_causes(f), "keystone").roots, Names{"keystone"});
}

TEST(RootCause, AnUpServiceWithADownDependencyIsNotAffected) {
  std::vector<ServiceFacts> f = {svc("keystone", S::Up, {"galera"}), svc("galera", S::Down)};
  auto v = find_root_causes(f);
  EXPECT_TRUE(find(v, "keystone").roots.empty());
  EXPECT_TRUE(find(v, "galera").affected.empty());
}

TEST(RootCause, ADiamondNamesTheRootOnce) {
  // nova -> keystone -> galera, nova -> galera, glance -> keystone
  std::vector<ServiceFacts> f = {svc("nova", S::Down, {"keystone", "galera"}), svc("glance", S::Down, {"keystone"}),
                                 svc("keystone", S::Down, {"galera"}), svc("galera", S::Down)};
  auto v = find_root_causes(f);
  EXPECT_EQ(find(v, "nova").roots, Names{"galera"});
  EXPECT_EQ(find(v, "glance").roots, Names{"galera"});
  EXPECT_EQ(find(v, "galera").affected, (Names{"nova", "glance", "keystone"}));
}

TEST(RootCause, TwoIndependentRoots) {
  std::vector<ServiceFacts> f = {svc("nova", S::Down, {"galera", "rabbit"}), svc("galera", S::Down, {}, "g"),
                                 svc("rabbit", S::Down, {}, "r")};
  auto v = find_root_causes(f);
  EXPECT_EQ(find(v, "nova").roots, (Names{"galera", "rabbit"}));
  EXPECT_EQ(find(v, "nova").root_cause, "galera: down — g; rabbit: down — r");
  EXPECT_EQ(find(v, "galera").affected, Names{"nova"});
  EXPECT_EQ(find(v, "rabbit").affected, Names{"nova"});
}

TEST(RootCause, ADownServiceBetweenUpOnesIsTheRoot) {
  // nova -> keystone (down) -> galera (up): keystone is the root.
  std::vector<ServiceFacts> f = {svc("nova", S::Down, {"keystone"}), svc("keystone", S::Down, {"galera"}),
                                 svc("galera", S::Up)};
  auto v = find_root_causes(f);
  EXPECT_EQ(find(v, "nova").roots, Names{"keystone"});
  EXPECT_EQ(find(v, "keystone").affected, Names{"nova"});
}

TEST(RootCause, ACycleDoesNotLoop) {
  // The loader refuses cycles; the walk must still end if one got here.
  std::vector<ServiceFacts> f = {svc("a", S::Down, {"b"}), svc("b", S::Down, {"a"})};
  auto v = find_root_causes(f);
  EXPECT_FALSE(find(v, "a").roots.empty());
  EXPECT_FALSE(find(v, "b").roots.empty());
}

TEST(RootCause, UnknownDependenciesAreIgnored) {
  std::vector<ServiceFacts> f = {svc("a", S::Down, {"nope"})};
  EXPECT_EQ(find(find_root_causes(f), "a").roots, Names{"a"});
}

ServerView server(std::string name, ServerState state, std::string reason = "", uint32_t weight = 1) {
  ServerView s;
  s.server = std::move(name);
  s.state = state;
  s.reason = std::move(reason);
  s.weight = weight;
  return s;
}

TEST(ServiceFacts, StatesFromServers) {
  ServiceView v;
  v.name = "keystone";
  v.servers = {server("a", ServerState::Up), server("b", ServerState::Up)};
  EXPECT_EQ(service_facts(v, {}).state, S::Up);
  v.servers[1] = server("b", ServerState::Down, "HTTP 503 from GET /v3");
  auto f = service_facts(v, {"galera"});
  EXPECT_EQ(f.state, S::Degraded);
  EXPECT_EQ(f.reason, "b down (HTTP 503 from GET /v3)");
  EXPECT_EQ(f.depends_on, Names{"galera"});
  v.servers[0] = server("a", ServerState::Down, "connect refused");
  f = service_facts(v, {});
  EXPECT_EQ(f.state, S::Down);
  EXPECT_EQ(f.reason, "no usable server: a down (connect refused); b down (HTTP 503 from GET /v3)");
  // Weight 0 (agent 0%) is not usable.
  v.servers = {server("a", ServerState::Up, "", 0)};
  EXPECT_EQ(service_facts(v, {}).state, S::Down);
}

TEST(ServiceFacts, UnknownUntilChecked) {
  ServiceView v;
  v.name = "s";
  v.servers = {server("a", ServerState::Unknown), server("b", ServerState::Unknown)};
  EXPECT_EQ(service_facts(v, {}).state, S::Unknown);
  v.servers[0] = server("a", ServerState::Up);
  EXPECT_EQ(service_facts(v, {}).state, S::Degraded) << "one up, one not known yet";
  v.servers[0] = server("a", ServerState::Down, "x");
  EXPECT_EQ(service_facts(v, {}).state, S::Unknown) << "none usable, one not known yet";
}

TEST(ServiceFacts, OperatorStatesAreNotCountedUnlessAllAre) {
  ServiceView v;
  v.name = "s";
  v.servers = {server("a", ServerState::Up), server("b", ServerState::Maint)};
  EXPECT_EQ(service_facts(v, {}).state, S::Up);
  v.servers[0] = server("a", ServerState::Drain);
  auto f = service_facts(v, {});
  EXPECT_EQ(f.state, S::Down);
  EXPECT_EQ(f.reason, "every server is drained or in maintenance");
}

TEST(ServiceFacts, SingleWriterIsDownWithoutAWriter) {
  ServiceView v;
  v.name = "galera";
  v.single_writer = true;
  v.servers = {server("ctrl-0", ServerState::Up, "", 1), server("ctrl-1", ServerState::Up, "", 0)};
  v.writer = "ctrl-0";
  EXPECT_EQ(service_facts(v, {}).state, S::Up) << "a standby has weight 0 on purpose";
  v.servers[1] = server("ctrl-1", ServerState::Down, "connect refused", 0);
  EXPECT_EQ(service_facts(v, {}).state, S::Degraded);
  v.writer.reset();
  v.writer_reason = "no eligible writer: ctrl-0 wsrep_local_state 2 (Donor/Desynced); ctrl-1 connect refused";
  auto f = service_facts(v, {});
  EXPECT_EQ(f.state, S::Down);
  EXPECT_EQ(f.reason, v.writer_reason);
}

}  // namespace
}  // namespace hafront::health
