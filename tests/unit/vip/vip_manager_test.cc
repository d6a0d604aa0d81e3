// VipManager on a real io_context with a recording fake NetOps: the calls it makes, in
// order, for acquire, release, external deletion, link loss, conflicts and reloads.
#include "vip/vip_manager.h"

#include <gtest/gtest.h>

#include "config/units.h"

namespace hafront::vip {
namespace {

namespace asio = boost::asio;

class FakeNetOps : public NetOps {
 public:
  std::vector<std::string> calls;
  std::map<std::string, LinkInfo> links;
  std::vector<MarkedAddress> marked;
  std::optional<Mac> conflict;
  std::string add_error;
  size_t sockets = 0;
  NetWatcher watcher;

  std::optional<LinkInfo> link(const std::string& name, std::string& error) override {
    auto it = links.find(name);
    if (it == links.end()) {
      error = "interface " + name + " does not exist";
      return std::nullopt;
    }
    return it->second;
  }
  std::string add_address(int ifindex, const config::Cidr& c) override {
    calls.push_back("add " + std::to_string(ifindex) + " " + c.str());
    return add_error;
  }
  std::string delete_address(int ifindex, const config::Cidr& c) override {
    calls.push_back("delete " + std::to_string(ifindex) + " " + c.str());
    return {};
  }
  std::vector<MarkedAddress> marked_addresses(std::string&) override { return marked; }
  std::string send_frames(int ifindex, const std::vector<Frame>& frames) override {
    calls.push_back("send " + std::to_string(ifindex) + " x" + std::to_string(frames.size()));
    return {};
  }
  void probe(const LinkInfo& l, const config::Address& a, Duration,
             std::function<void(std::optional<Mac>, std::string)> done) override {
    calls.push_back("probe " + std::to_string(l.ifindex) + " " + a.str());
    done(conflict, "");
  }
  size_t destroy_sockets(const config::Address& a, std::string&) override {
    calls.push_back("destroy-sockets " + a.str());
    return sockets;
  }
  void watch(NetWatcher w) override { watcher = std::move(w); }
};

config::Vip vip(const char* name, const char* cidr, const char* ifname) {
  config::Vip v;
  v.name = name;
  v.address = *config::parse_cidr(cidr);
  v.interface = ifname;
  v.garp.count = 2;
  v.garp.interval = Duration{1};
  return v;
}

class VipManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    net.links["eth0"] = LinkInfo{7, "eth0", {2, 0, 0, 0, 0, 1}, true, false, false};
    cb.alert = [this](const std::string& m) { alerts.push_back(m); };
    cb.state_changed = [this](const std::string&, VipState s) { states.push_back(s); };
    mgr = std::make_unique<VipManager>(io, net, cb);
  }
  void run() {
    io.restart();
    io.run_for(std::chrono::milliseconds(50));
  }
  VipState state(const std::string& name) {
    for (const auto& v : mgr->view()) {
      if (v.name == name) return v.state;
    }
    ADD_FAILURE() << "no VIP " << name;
    return VipState::Released;
  }

  asio::io_context io;
  FakeNetOps net;
  VipManager::Callbacks cb;
  std::vector<std::string> alerts;
  std::vector<VipState> states;
  std::unique_ptr<VipManager> mgr;
};

using V = std::vector<std::string>;

TEST_F(VipManagerTest, StartRemovesStaleMarkedAddresses) {
  net.marked.push_back({7, "eth0", *config::parse_cidr("192.0.2.99/24")});
  auto removed = mgr->start();
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(net.calls, V({"delete 7 192.0.2.99/24"}));
  EXPECT_TRUE(net.watcher.address != nullptr);
}

TEST_F(VipManagerTest, AcquireThenReleaseInOrder) {
  mgr->start();
  mgr->configure({vip("internal", "192.0.2.100/24", "eth0")});
  mgr->set_wanted("internal", true);
  run();
  EXPECT_EQ(state("internal"), VipState::Held);
  EXPECT_EQ(net.calls, V({"probe 7 192.0.2.100", "add 7 192.0.2.100/24", "send 7 x2", "send 7 x2"}));
  net.calls.clear();
  mgr->set_wanted("internal", false);
  run();
  EXPECT_EQ(net.calls, V({"destroy-sockets 192.0.2.100", "delete 7 192.0.2.100/24"}));
  EXPECT_EQ(state("internal"), VipState::Released);
}

TEST_F(VipManagerTest, Ipv6AnnouncesWithOneNeighbourAdvertisementPerRound) {
  mgr->start();
  mgr->configure({vip("v6", "2001:db8:77::100/64", "eth0")});
  mgr->set_wanted("v6", true);
  run();
  EXPECT_EQ(net.calls, V({"probe 7 2001:db8:77::100", "add 7 2001:db8:77::100/64", "send 7 x1", "send 7 x1"}));
}

TEST_F(VipManagerTest, ExternalDeletionIsReAddedWithAnAlert) {
  mgr->start();
  mgr->configure({vip("internal", "192.0.2.100/24", "eth0")});
  mgr->set_wanted("internal", true);
  run();
  net.calls.clear();
  net.watcher.address(7, *config::parse_address("192.0.2.100"), false, true);
  run();
  EXPECT_EQ(state("internal"), VipState::Held);
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_NE(alerts[0].find("removed from eth0 by someone else"), std::string::npos);
  EXPECT_EQ(net.calls.front(), "add 7 192.0.2.100/24");
}

TEST_F(VipManagerTest, NotificationsAboutOtherAddressesAreIgnored) {
  mgr->start();
  mgr->configure({vip("internal", "192.0.2.100/24", "eth0")});
  mgr->set_wanted("internal", true);
  run();
  net.calls.clear();
  net.watcher.address(7, *config::parse_address("192.0.2.101"), false, true);
  net.watcher.address(8, *config::parse_address("192.0.2.100"), false, true);
  run();
  EXPECT_TRUE(net.calls.empty());
  EXPECT_TRUE(alerts.empty());
}

TEST_F(VipManagerTest, LinkDownReleasesAndLinkUpTakesItBack) {
  mgr->start();
  mgr->configure({vip("internal", "192.0.2.100/24", "eth0")});
  mgr->set_wanted("internal", true);
  run();
  LinkInfo down = net.links["eth0"];
  down.up = false;
  net.watcher.link(down);
  run();
  EXPECT_EQ(state("internal"), VipState::Released);
  EXPECT_FALSE(mgr->view()[0].servable);
  LinkInfo up = down;
  up.up = true;
  net.watcher.link(up);
  run();
  EXPECT_EQ(state("internal"), VipState::Held);
  EXPECT_TRUE(mgr->view()[0].servable);
}

TEST_F(VipManagerTest, DeletedInterfaceReleasesAndARecreatedOneIsUsed) {
  mgr->start();
  mgr->configure({vip("internal", "192.0.2.100/24", "eth0")});
  mgr->set_wanted("internal", true);
  run();
  net.calls.clear();
  LinkInfo gone = net.links["eth0"];
  gone.deleted = true;
  gone.up = false;
  net.links.erase("eth0");
  net.watcher.link(gone);
  run();
  EXPECT_EQ(state("internal"), VipState::Released);
  EXPECT_EQ(mgr->view()[0].reason, "interface eth0 was removed");
  EXPECT_EQ(net.calls, V({"destroy-sockets 192.0.2.100"}));  // nothing to delete: it went with eth0
  net.links["eth0"] = LinkInfo{12, "eth0", {2, 0, 0, 0, 0, 1}, true, false, false};  // a new index
  net.watcher.link(net.links["eth0"]);
  run();
  EXPECT_EQ(state("internal"), VipState::Held);
  EXPECT_NE(std::find(net.calls.begin(), net.calls.end(), "add 12 192.0.2.100/24"), net.calls.end());
}

TEST_F(VipManagerTest, ConflictKeepsTheAddressAwayAndAlerts) {
  net.conflict = Mac{2, 0, 0, 0, 0, 9};
  mgr->start();
  mgr->configure({vip("internal", "192.0.2.100/24", "eth0")});
  mgr->set_wanted("internal", true);
  run();
  EXPECT_EQ(state("internal"), VipState::Released);
  EXPECT_EQ(net.calls, V({"probe 7 192.0.2.100"}));
  ASSERT_FALSE(alerts.empty());
  EXPECT_NE(alerts[0].find("02:00:00:00:00:09"), std::string::npos);
  EXPECT_NE(mgr->view()[0].reason.find("address in use by MAC 02:00:00:00:00:09"), std::string::npos);
}

TEST_F(VipManagerTest, MissingInterfaceIsReportedAndNothingIsConfigured) {
  mgr->start();
  mgr->configure({vip("internal", "192.0.2.100/24", "eth9")});
  mgr->set_wanted("internal", true);
  run();
  EXPECT_TRUE(net.calls.empty());
  auto v = mgr->view()[0];
  EXPECT_EQ(v.state, VipState::Released);
  EXPECT_FALSE(v.servable);
  EXPECT_NE(v.reason.find("interface eth9 does not exist"), std::string::npos) << v.reason;
  // The interface appears later: the VIP is taken.
  net.links["eth9"] = LinkInfo{9, "eth9", {2, 0, 0, 0, 0, 2}, true, false, false};
  net.watcher.link(net.links["eth9"]);
  run();
  EXPECT_EQ(state("internal"), VipState::Held);
}

TEST_F(VipManagerTest, Ipv6OnAnInterfaceWithoutIpv6IsRefused) {
  net.links["eth0"].ipv6_disabled = true;
  mgr->start();
  mgr->configure({vip("v6", "2001:db8:77::100/64", "eth0")});
  mgr->set_wanted("v6", true);
  run();
  EXPECT_TRUE(net.calls.empty());
  EXPECT_NE(mgr->view()[0].reason.find("IPv6 is disabled on eth0"), std::string::npos);
}

TEST_F(VipManagerTest, AddFailureLeavesNoHalfState) {
  net.add_error = "the address is already configured on the interface (not by hafront)";
  mgr->start();
  mgr->configure({vip("internal", "192.0.2.100/24", "eth0")});
  mgr->set_wanted("internal", true);
  run();
  EXPECT_EQ(state("internal"), VipState::Released);
  ASSERT_FALSE(alerts.empty());
  EXPECT_NE(alerts[0].find("already configured"), std::string::npos);
}

TEST_F(VipManagerTest, ReloadReleasesRemovedAndMovedVips) {
  mgr->start();
  mgr->configure({vip("a", "192.0.2.100/24", "eth0"), vip("b", "192.0.2.101/24", "eth0")});
  mgr->set_wanted("a", true);
  mgr->set_wanted("b", true);
  run();
  net.calls.clear();
  mgr->configure({vip("b", "192.0.2.102/24", "eth0")});  // a removed, b moved
  EXPECT_EQ(net.calls, V({"destroy-sockets 192.0.2.100", "delete 7 192.0.2.100/24", "destroy-sockets 192.0.2.101",
                          "delete 7 192.0.2.101/24"}));
  ASSERT_EQ(mgr->view().size(), 1u);
  mgr->set_wanted("b", true);
  run();
  EXPECT_EQ(state("b"), VipState::Held);
}

TEST_F(VipManagerTest, LeaseDriverIsRefusedNotReplacedByTheAddressDriver) {
  std::vector<bool> reported;
  cb.servable_changed = [&](const std::string&, bool servable, const std::string&) { reported.push_back(servable); };
  mgr = std::make_unique<VipManager>(io, net, cb, nullptr, "BPF is not permitted here");
  mgr->start();
  config::Vip v = vip("leased", "192.0.2.100/24", "eth0");
  v.driver = config::VipDriver::Lease;
  mgr->configure({v});
  mgr->set_wanted("leased", true);
  run();
  EXPECT_TRUE(net.calls.empty());
  auto view = mgr->view()[0];
  EXPECT_EQ(view.state, VipState::Released);
  EXPECT_EQ(view.driver, "lease");
  EXPECT_FALSE(view.servable);  // so the cluster never assigns it to this node
  EXPECT_EQ(std::count(reported.begin(), reported.end(), true), 0);
  EXPECT_NE(view.reason.find("BPF is not permitted here"), std::string::npos) << view.reason;
}

class FakeLeaseOps : public LeaseOps {
 public:
  std::vector<std::string>& calls;
  std::string problem;
  explicit FakeLeaseOps(std::vector<std::string>& c) : calls(c) {}
  std::string check_uplink(const std::string&, bool) override { return problem; }
  std::string attach(int ifindex) override {
    calls.push_back("gate-attach " + std::to_string(ifindex));
    return {};
  }
  std::string set(const config::Address& a, const Mac&, uint64_t expiry) override {
    calls.push_back("gate-set " + a.str() + " " + std::to_string(expiry));
    return {};
  }
  void expire(const config::Address& a) override { calls.push_back("gate-expire " + a.str()); }
  void forget(const config::Address& a) override { calls.push_back("gate-forget " + a.str()); }
  uint64_t now_ns() override { return 1000; }
};

class LeaseDriverTest : public VipManagerTest {
 protected:
  void SetUp() override {
    VipManagerTest::SetUp();
    net.links["lo"] = LinkInfo{1, "lo", {}, true, true, false};
    mgr = std::make_unique<VipManager>(io, net, cb, &lease);
    mgr->start();
  }
  config::Vip leased(config::VipDriver d = config::VipDriver::Lease) {
    config::Vip v = vip("db", "192.0.2.100/24", "eth0");
    v.driver = d;
    v.garp.count = 1;
    return v;
  }
  FakeLeaseOps lease{net.calls};
};

TEST_F(LeaseDriverTest, AcquireGatesFirstThenPutsAHostAddressOnLo) {
  mgr->configure({leased()});
  EXPECT_EQ(net.calls, V({"gate-attach 7", "gate-set 192.0.2.100 0"}));  // gated and silent from the start
  net.calls.clear();
  mgr->set_lease(5000);
  EXPECT_TRUE(net.calls.empty());  // not held: the gate stays shut
  mgr->set_wanted("db", true);
  run();
  EXPECT_EQ(state("db"), VipState::Held);
  // The probe and the announcement go out of the uplink; the address goes on lo as a /32.
  EXPECT_EQ(net.calls, V({"probe 7 192.0.2.100", "gate-attach 7", "gate-set 192.0.2.100 5000", "add 1 192.0.2.100/32",
                          "send 7 x2"}));
  auto view = mgr->view()[0];
  EXPECT_EQ(view.driver, "lease");
  ASSERT_TRUE(view.lease_expiry_ns.has_value());
  EXPECT_EQ(*view.lease_expiry_ns, 5000u);
}

TEST_F(LeaseDriverTest, RenewalAndQuorumLossReachTheGate) {
  mgr->configure({leased()});
  mgr->set_lease(5000);
  mgr->set_wanted("db", true);
  run();
  net.calls.clear();
  mgr->set_lease(9000);
  mgr->set_lease(0);
  EXPECT_EQ(net.calls, V({"gate-set 192.0.2.100 9000", "gate-expire 192.0.2.100"}));
}

TEST_F(LeaseDriverTest, ReleaseSilencesTheGateBeforeTheAddressGoes) {
  mgr->configure({leased()});
  mgr->set_lease(5000);
  mgr->set_wanted("db", true);
  run();
  net.calls.clear();
  mgr->set_wanted("db", false);
  run();
  EXPECT_EQ(state("db"), VipState::Released);
  EXPECT_EQ(net.calls, V({"destroy-sockets 192.0.2.100", "gate-expire 192.0.2.100", "delete 1 192.0.2.100/32"}));
  net.calls.clear();
  mgr->set_lease(7000);  // released: renewals do not reopen the gate
  EXPECT_TRUE(net.calls.empty());
  mgr->configure({});  // removed from the config: no longer gated at all
  EXPECT_EQ(net.calls, V({"gate-forget 192.0.2.100"}));
}

TEST_F(LeaseDriverTest, AutoFallsBackToTheAddressDriverAndSaysWhy) {
  lease.problem = "set net.ipv4.conf.eth0.arp_ignore=1";
  mgr->configure({leased(config::VipDriver::Auto)});
  mgr->set_wanted("db", true);
  run();
  auto view = mgr->view()[0];
  EXPECT_EQ(view.driver, "address");
  EXPECT_EQ(view.driver_note, "set net.ipv4.conf.eth0.arp_ignore=1");
  EXPECT_EQ(state("db"), VipState::Held);
  EXPECT_NE(std::find(net.calls.begin(), net.calls.end(), "add 7 192.0.2.100/24"), net.calls.end());
}

TEST_F(LeaseDriverTest, AutoUsesTheLeaseWhereItWorks) {
  mgr->configure({leased(config::VipDriver::Auto)});
  EXPECT_EQ(mgr->view()[0].driver, "lease");
  EXPECT_TRUE(mgr->leased("db"));
}

TEST_F(LeaseDriverTest, ExplicitLeaseWithTheKernelAnsweringIsRefused) {
  lease.problem = "the kernel answers ARP for addresses on lo: set net.ipv4.conf.eth0.arp_ignore=1 (now 0)";
  mgr->configure({leased()});
  net.calls.clear();
  mgr->set_wanted("db", true);
  run();
  EXPECT_TRUE(net.calls.empty());
  auto view = mgr->view()[0];
  EXPECT_FALSE(view.servable);
  EXPECT_NE(view.reason.find("arp_ignore=1"), std::string::npos) << view.reason;
}

TEST_F(VipManagerTest, ReleaseAllDeletesEveryHeldAddress) {
  mgr->start();
  mgr->configure({vip("a", "192.0.2.100/24", "eth0")});
  mgr->set_wanted("a", true);
  run();
  net.calls.clear();
  mgr->release_all();
  EXPECT_EQ(net.calls, V({"destroy-sockets 192.0.2.100", "delete 7 192.0.2.100/24"}));
  EXPECT_EQ(state("a"), VipState::Released);
}

}  // namespace
}  // namespace hafront::vip
