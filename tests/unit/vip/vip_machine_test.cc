#include "vip/vip_machine.h"

#include <gtest/gtest.h>

#include "config/units.h"

namespace hafront::vip {
namespace {

config::Vip make_vip() {
  config::Vip v;
  v.name = "internal";
  v.address = *config::parse_cidr("192.0.2.100/24");
  v.interface = "eth0";
  v.garp.count = 5;
  v.garp.interval = Duration{100};
  v.garp.refresh = Duration{0};
  v.probe = Duration{50};
  return v;
}

// Drives the machine and records every action, as text.
struct Driver {
  config::Vip vip = make_vip();
  MachineState s;
  Clock::time_point now{};
  std::vector<std::string> log;

  std::vector<std::string> on(EventKind k, std::string detail = {}, TimerKind t = TimerKind::Refresh) {
    now += std::chrono::milliseconds(10);
    auto r = step(s, Event{k, std::move(detail), t}, vip, now);
    s = r.state;
    std::vector<std::string> out;
    for (const auto& a : r.actions) out.push_back(describe(a));
    return out;
  }
};

using V = std::vector<std::string>;

TEST(VipMachine, AcquireProbesThenAddsThenAnnounces) {
  Driver d;
  EXPECT_EQ(d.on(EventKind::Want), V({"probe 50ms"}));
  EXPECT_EQ(d.s.state, VipState::Acquiring);
  EXPECT_EQ(d.on(EventKind::ProbeClear), V({"add-address"}));
  EXPECT_EQ(d.on(EventKind::AddressAdded), V({"servable", "announce 5x100ms"}));
  EXPECT_EQ(d.s.state, VipState::Held);
  EXPECT_EQ(d.s.reason, "");
}

TEST(VipMachine, NoProbeWhenSwitchedOff) {
  Driver d;
  d.vip.probe = Duration{0};
  EXPECT_EQ(d.on(EventKind::Want), V({"add-address"}));
}

TEST(VipMachine, RefreshTimerWhenConfigured) {
  Driver d;
  d.vip.garp.refresh = Duration{60000};
  d.on(EventKind::Want);
  d.on(EventKind::ProbeClear);
  EXPECT_EQ(d.on(EventKind::AddressAdded), V({"servable", "announce 5x100ms", "start-timer refresh 60000ms"}));
  EXPECT_EQ(d.on(EventKind::TimerFired, "", TimerKind::Refresh), V({"announce 1x0ms", "start-timer refresh 60000ms"}));
}

TEST(VipMachine, ReleaseClosesConnectionsBeforeDeletingTheAddress) {
  Driver d;
  d.on(EventKind::Want);
  d.on(EventKind::ProbeClear);
  d.on(EventKind::AddressAdded);
  EXPECT_EQ(d.on(EventKind::Unwant), V({"cancel-timer refresh", "close-connections", "delete-address"}));
  EXPECT_EQ(d.s.state, VipState::Releasing);
  EXPECT_EQ(d.on(EventKind::AddressDeleted), V{});
  EXPECT_EQ(d.s.state, VipState::Released);
  EXPECT_EQ(d.on(EventKind::AddressDeleted), V{});  // the netlink echo of our own delete
}

TEST(VipMachine, ConflictIsAlertedAndRetriedNotTaken) {
  Driver d;
  d.on(EventKind::Want);
  auto a = d.on(EventKind::ProbeConflict, "MAC 02:00:00:00:00:09");
  ASSERT_EQ(a.size(), 3u);
  EXPECT_NE(a[0].find("alert: VIP internal (192.0.2.100) is already answered for by MAC 02:00:00:00:00:09"), std::string::npos);
  EXPECT_EQ(a[1], "unservable: address in use by MAC 02:00:00:00:00:09");
  EXPECT_EQ(a[2], "start-timer retry 1000ms");
  EXPECT_EQ(d.s.state, VipState::Released);
  EXPECT_EQ(d.on(EventKind::TimerFired, "", TimerKind::Retry), V({"probe 50ms"}));
  EXPECT_EQ(d.s.state, VipState::Acquiring);
}

TEST(VipMachine, AddressRemovedBySomeoneElseIsAddedBackWithAnAlert) {
  Driver d;
  d.on(EventKind::Want);
  d.on(EventKind::ProbeClear);
  d.on(EventKind::AddressAdded);
  auto a = d.on(EventKind::AddressDeleted);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0], "cancel-timer refresh");
  EXPECT_NE(a[1].find("was removed from eth0 by someone else"), std::string::npos);
  EXPECT_EQ(a[2], "add-address");  // no probe: it was ours
  EXPECT_EQ(d.on(EventKind::AddressAdded), V({"servable", "announce 5x100ms"}));
}

TEST(VipMachine, LinkDownReleasesAndLinkUpReacquires) {
  Driver d;
  d.on(EventKind::Want);
  d.on(EventKind::ProbeClear);
  d.on(EventKind::AddressAdded);
  EXPECT_EQ(d.on(EventKind::LinkDown),
            V({"unservable: interface eth0 is down", "cancel-timer refresh", "close-connections", "delete-address"}));
  EXPECT_EQ(d.on(EventKind::AddressDeleted), V{});
  EXPECT_EQ(d.s.state, VipState::Released);
  EXPECT_EQ(d.s.reason, "released: the interface is down");
  EXPECT_EQ(d.on(EventKind::LinkUp), V({"servable", "probe 50ms"}));
}

TEST(VipMachine, WantWhileLinkDownWaitsForTheLink) {
  Driver d;
  d.on(EventKind::LinkDown);
  EXPECT_EQ(d.on(EventKind::Want), V{});
  EXPECT_EQ(d.s.reason, "wanted, but the interface is down");
  EXPECT_EQ(d.on(EventKind::LinkUp), V({"servable", "probe 50ms"}));
}

TEST(VipMachine, UnwantDuringProbeNeedsNoDelete) {
  Driver d;
  d.on(EventKind::Want);
  EXPECT_EQ(d.on(EventKind::Unwant), V{});
  EXPECT_EQ(d.s.state, VipState::Released);
  EXPECT_EQ(d.on(EventKind::ProbeClear), V{});  // a late probe result changes nothing
}

TEST(VipMachine, UnwantDuringAddDeletesWhatMayHaveBeenAdded) {
  Driver d;
  d.on(EventKind::Want);
  d.on(EventKind::ProbeClear);
  EXPECT_EQ(d.on(EventKind::Unwant), V({"cancel-timer refresh", "close-connections", "delete-address"}));
  EXPECT_EQ(d.on(EventKind::AddressAdded), V{});  // late ack while releasing: ignored
  EXPECT_EQ(d.s.state, VipState::Releasing);
}

TEST(VipMachine, WantAgainDuringReleaseReacquiresAfterTheDelete) {
  Driver d;
  d.on(EventKind::Want);
  d.on(EventKind::ProbeClear);
  d.on(EventKind::AddressAdded);
  d.on(EventKind::Unwant);
  EXPECT_EQ(d.on(EventKind::Want), V{});
  EXPECT_EQ(d.on(EventKind::AddressDeleted), V({"probe 50ms"}));
}

TEST(VipMachine, AddFailureIsAlertedAndRetried) {
  Driver d;
  d.on(EventKind::Want);
  d.on(EventKind::ProbeClear);
  auto a = d.on(EventKind::AddressAddFailed, "Operation not permitted");
  ASSERT_EQ(a.size(), 3u);
  EXPECT_NE(a[0].find("cannot add VIP internal (192.0.2.100/24) to eth0: Operation not permitted"), std::string::npos);
  EXPECT_EQ(a[2], "start-timer retry 1000ms");
  d.on(EventKind::Unwant);
  EXPECT_EQ(d.s.state, VipState::Released);
  EXPECT_EQ(d.on(EventKind::TimerFired, "", TimerKind::Retry), V{});  // cancelled decision: no retry
}

TEST(VipMachine, DeleteFailureIsRetried) {
  Driver d;
  d.on(EventKind::Want);
  d.on(EventKind::ProbeClear);
  d.on(EventKind::AddressAdded);
  d.on(EventKind::Unwant);
  auto a = d.on(EventKind::AddressDeleteFailed, "boom");
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[1], "start-timer retry 1000ms");
  EXPECT_EQ(d.on(EventKind::TimerFired, "", TimerKind::Retry), V({"delete-address"}));
}

TEST(VipMachine, StepIsPureAndRecordsSince) {
  Driver d;
  MachineState before = d.s;
  auto r1 = step(before, Event{EventKind::Want, ""}, d.vip, Clock::time_point{} + std::chrono::seconds(5));
  auto r2 = step(before, Event{EventKind::Want, ""}, d.vip, Clock::time_point{} + std::chrono::seconds(5));
  EXPECT_EQ(r1.state, r2.state);
  EXPECT_EQ(r1.state.since, Clock::time_point{} + std::chrono::seconds(5));
  EXPECT_EQ(before, MachineState{});
}

}  // namespace
}  // namespace hafront::vip
