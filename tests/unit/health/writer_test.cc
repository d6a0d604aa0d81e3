// The single-writer policy: who takes the writes of a Galera service.
#include "health/writer.h"

#include <gtest/gtest.h>

namespace hafront::health {
namespace {

GaleraView synced(uint64_t committed) {
  GaleraView g;
  g.local_state = 4;
  g.local_state_comment = "Synced";
  g.cluster_status = "Primary";
  g.ready = true;
  g.desync = false;
  g.last_committed = committed;
  g.read_only = false;
  return g;
}

WriterCandidate node(std::string name, std::optional<GaleraView> g, bool usable = true) {
  WriterCandidate c;
  c.name = std::move(name);
  c.usable = usable;
  c.unusable_reason = usable ? "" : "down (connect refused)";
  c.last_ok = usable;
  c.last_reason = usable ? "Synced, Primary" : "connect refused";
  c.mysql = true;
  c.galera = std::move(g);
  return c;
}

TEST(Writer, FirstChoiceIsTheHighestLastCommitted) {
  std::vector<WriterCandidate> c = {node("a", synced(10)), node("b", synced(12)), node("c", synced(11))};
  auto w = choose_writer(c, std::nullopt);
  ASSERT_TRUE(w.writer);
  EXPECT_EQ(c[*w.writer].name, "b");
  EXPECT_TRUE(w.changed);
  EXPECT_NE(w.reason.find("highest wsrep_last_committed (12)"), std::string::npos) << w.reason;
}

TEST(Writer, TiesGoToConfiguredOrder) {
  std::vector<WriterCandidate> c = {node("a", synced(7)), node("b", synced(7))};
  auto w = choose_writer(c, std::nullopt);
  ASSERT_TRUE(w.writer);
  EXPECT_EQ(*w.writer, 0u);
}

TEST(Writer, NoFailbackWhileTheWriterIsEligible) {
  std::vector<WriterCandidate> c = {node("a", synced(100)), node("b", synced(5))};
  auto w = choose_writer(c, std::string("b"));
  ASSERT_TRUE(w.writer);
  EXPECT_EQ(c[*w.writer].name, "b") << "a has seen more, but the writer stays";
  EXPECT_FALSE(w.changed);
}

TEST(Writer, DesyncedDonorIsNotEligible) {
  GaleraView donor = synced(50);
  donor.local_state = 2;
  donor.local_state_comment = "Donor/Desynced";
  std::vector<WriterCandidate> c = {node("a", donor), node("b", synced(40))};
  auto w = choose_writer(c, std::string("a"));
  ASSERT_TRUE(w.writer);
  EXPECT_EQ(c[*w.writer].name, "b");
  EXPECT_TRUE(w.changed);
  EXPECT_NE(w.reason.find("a wsrep_local_state 2 (Donor/Desynced)"), std::string::npos) << w.reason;

  GaleraView flagged = synced(60);
  flagged.desync = true;  // wsrep_desync=ON with the state still 4 for a moment
  EXPECT_EQ(why_not_writable(flagged), "wsrep_desync is ON");
}

TEST(Writer, NonPrimaryIsNotEligible) {
  GaleraView partitioned = synced(90);
  partitioned.cluster_status = "non-Primary";
  std::vector<WriterCandidate> c = {node("a", partitioned), node("b", synced(80))};
  auto w = choose_writer(c, std::nullopt);
  ASSERT_TRUE(w.writer);
  EXPECT_EQ(c[*w.writer].name, "b");
  EXPECT_EQ(why_not_writable(partitioned), "wsrep_cluster_status non-Primary, need Primary");
}

TEST(Writer, ReadOnlyIsNotEligible) {
  GaleraView ro = synced(1);
  ro.read_only = true;
  EXPECT_EQ(why_not_writable(ro), "read_only is ON");
}

TEST(Writer, NoneEligibleSaysWhyForEach) {
  GaleraView donor = synced(50);
  donor.local_state = 2;
  donor.local_state_comment = "Donor/Desynced";
  std::vector<WriterCandidate> c = {node("ctrl-0", donor), node("ctrl-1", std::nullopt, false)};
  auto w = choose_writer(c, std::string("ctrl-0"));
  EXPECT_FALSE(w.writer);
  EXPECT_TRUE(w.changed);
  EXPECT_EQ(w.reason,
            "no eligible writer: ctrl-0 wsrep_local_state 2 (Donor/Desynced), need 4 (Synced); ctrl-1 down (connect refused)");
}

TEST(Writer, DownOrFailingOrUncheckedServersAreNotEligible) {
  WriterCandidate failing = node("a", synced(9));
  failing.last_ok = false;
  failing.last_reason = "Access denied";
  EXPECT_EQ(why_not_eligible(failing), "Access denied");
  WriterCandidate unchecked = node("b", std::nullopt);
  unchecked.last_ok.reset();
  EXPECT_EQ(why_not_eligible(unchecked), "not checked yet");
  WriterCandidate no_view = node("c", std::nullopt);
  EXPECT_EQ(why_not_eligible(no_view), "its check reported no server status");
  EXPECT_EQ(why_not_eligible(node("d", synced(1), false)), "down (connect refused)");
}

TEST(Writer, PlainMariaDbOnlyNeedsToBeWritable) {
  GaleraView plain;
  plain.read_only = false;
  EXPECT_EQ(why_not_writable(plain), "");
  GaleraView missing_state;
  missing_state.cluster_status = "Primary";
  EXPECT_EQ(why_not_writable(missing_state), "no wsrep_local_state reported");
}

TEST(Writer, BackupsOnlyWhenNoOtherIsEligible) {
  WriterCandidate backup = node("spare", synced(1000));
  backup.backup = true;
  std::vector<WriterCandidate> c = {node("a", synced(1)), backup};
  auto w = choose_writer(c, std::nullopt);
  ASSERT_TRUE(w.writer);
  EXPECT_EQ(c[*w.writer].name, "a");
  c[0] = node("a", synced(1), false);
  w = choose_writer(c, std::string("a"));
  ASSERT_TRUE(w.writer);
  EXPECT_EQ(c[*w.writer].name, "spare");
}

TEST(Writer, NonMysqlChecksUseStateAndConfiguredOrder) {
  WriterCandidate a, b;
  a.name = "a";
  b.name = "b";
  a.usable = b.usable = true;
  a.last_ok = b.last_ok = true;
  std::vector<WriterCandidate> c = {a, b};
  auto w = choose_writer(c, std::nullopt);
  ASSERT_TRUE(w.writer);
  EXPECT_EQ(*w.writer, 0u);
  EXPECT_NE(w.reason.find("first eligible server in configured order"), std::string::npos);
  c[0].usable = false;
  w = choose_writer(c, std::string("a"));
  EXPECT_EQ(*w.writer, 1u);
  c[0].usable = true;  // a is back: no failback
  w = choose_writer(c, std::string("b"));
  EXPECT_EQ(*w.writer, 1u);
  EXPECT_FALSE(w.changed);
}

TEST(Writer, ANewWriterWaitsForEveryFirstCheck) {
  WriterCandidate later = node("b", synced(99));
  later.pending = true;
  later.last_ok.reset();
  std::vector<WriterCandidate> c = {node("a", synced(3)), later};
  auto w = choose_writer(c, std::nullopt);
  EXPECT_FALSE(w.writer) << "b may be the more advanced node";
  EXPECT_EQ(w.reason, "no writer yet: waiting for the first check of b");
  EXPECT_FALSE(w.changed);
  // A writer that is still eligible stays whatever the others do.
  w = choose_writer(c, std::string("a"));
  ASSERT_TRUE(w.writer);
  EXPECT_EQ(*w.writer, 0u);
  c[1].pending = false;
  c[1].last_ok = true;
  w = choose_writer(c, std::nullopt);
  ASSERT_TRUE(w.writer);
  EXPECT_EQ(c[*w.writer].name, "b");
}

TEST(Writer, AWriterNoLongerConfiguredIsReplaced) {
  std::vector<WriterCandidate> c = {node("a", synced(3))};
  auto w = choose_writer(c, std::string("gone"));
  ASSERT_TRUE(w.writer);
  EXPECT_TRUE(w.changed);
  EXPECT_NE(w.reason.find("gone is no longer configured"), std::string::npos);
}

// Hysteresis: with the check's fall and rise set, the writer survives a blip shorter than
// `fall` checks, and a replacement needs `rise` eligible checks in a row, so the role does
// not bounce between two flapping nodes (an IST donor, a spurious non-Primary under load).
WriterCandidate steady(std::string name, std::optional<GaleraView> g, uint32_t ok_streak) {
  WriterCandidate c = node(std::move(name), std::move(g));
  c.eligible_streak = ok_streak;
  c.rise = 2;
  c.fall = 2;
  return c;
}

TEST(Writer, TheWriterRidesOutABlipShorterThanFall) {
  GaleraView donor = synced(50);
  donor.local_state = 2;
  donor.local_state_comment = "Donor/Desynced";
  WriterCandidate a = steady("a", donor, 0);
  a.ineligible_streak = 1;
  std::vector<WriterCandidate> c = {a, steady("b", synced(60), 9)};
  auto w = choose_writer(c, std::string("a"));
  ASSERT_TRUE(w.writer);
  EXPECT_EQ(c[*w.writer].name, "a") << "one desynced check of two";
  EXPECT_FALSE(w.changed);
  EXPECT_NE(w.reason.find("Donor/Desynced), need 4 (Synced) (1 of 2 in a row"), std::string::npos) << w.reason;
  c[0].ineligible_streak = 2;
  w = choose_writer(c, std::string("a"));
  ASSERT_TRUE(w.writer);
  EXPECT_EQ(c[*w.writer].name, "b");
  EXPECT_TRUE(w.changed);
}

TEST(Writer, AWriterThatGoesDownHandsOverAtOnce) {
  WriterCandidate a = steady("a", std::nullopt, 0);
  a.usable = false;  // the proxy's refused connect ejected it
  a.unusable_reason = "down (ejected: connect refused seen by the proxy)";
  a.last_ok = false;
  a.ineligible_streak = 1;
  std::vector<WriterCandidate> c = {a, steady("b", synced(60), 9)};
  auto w = choose_writer(c, std::string("a"));
  ASSERT_TRUE(w.writer);
  EXPECT_EQ(c[*w.writer].name, "b");
}

TEST(Writer, AReplacementNeedsRiseEligibleChecksInARow) {
  WriterCandidate a = steady("a", std::nullopt, 0);
  a.usable = false;
  a.last_ok = false;
  a.ineligible_streak = 5;
  // b has seen more, but came back one check ago; c has been eligible for a while.
  std::vector<WriterCandidate> c = {a, steady("b", synced(80), 1), steady("c", synced(70), 6)};
  auto w = choose_writer(c, std::string("a"));
  ASSERT_TRUE(w.writer);
  EXPECT_EQ(c[*w.writer].name, "c");
  // b alone: no writer until its second eligible check, and the reason says so.
  c.pop_back();
  w = choose_writer(c, std::string("a"));
  EXPECT_FALSE(w.writer);
  EXPECT_NE(w.reason.find("b eligible in 1 check(s) in a row, needs 2 to take over"), std::string::npos) << w.reason;
  c[1].eligible_streak = 2;
  w = choose_writer(c, std::string("a"));
  ASSERT_TRUE(w.writer);
  EXPECT_EQ(c[*w.writer].name, "b");
  // With no writer before, one eligible check is enough (start-up, or after none was left).
  c[1].eligible_streak = 1;
  w = choose_writer(c, std::nullopt);
  ASSERT_TRUE(w.writer);
  EXPECT_EQ(c[*w.writer].name, "b");
}

}  // namespace
}  // namespace hafront::health
