#include "proxy/balance.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "config/units.h"

namespace hafront::proxy {
namespace {

using config::Balance;
using std::chrono::milliseconds;

ServerSpec srv(std::string name, uint32_t weight = 1, uint32_t maxconn = 0, ServerState state = ServerState::Up) {
  ServerSpec s;
  s.name = std::move(name);
  s.weight = weight;
  s.maxconn = maxconn;
  s.state = state;
  return s;
}

ServerSpec backup(std::string name) {
  ServerSpec s = srv(std::move(name));
  s.backup = true;
  return s;
}

BalancerOptions opts(Balance b, uint32_t maxqueue = 0, milliseconds queue_timeout = milliseconds{5000}) {
  BalancerOptions o;
  o.balance = b;
  o.maxqueue = maxqueue;
  o.queue_timeout = queue_timeout;
  return o;
}

// Picks n times without starting connections; the picked servers' names, concatenated
// ("-" for Queue, "!" for Unavailable).
std::string picks(Balancer& b, int n, const PickRequest& r = {}) {
  std::string out;
  for (int k = 0; k < n; ++k) {
    Pick p = b.pick(r);
    if (p.status == PickStatus::Picked) {
      out += b.server(p.server).name;
    } else {
      out += p.status == PickStatus::Queue ? "-" : "!";
    }
  }
  return out;
}

// Like picks(), but each pick starts a connection on the server.
std::string connect(Balancer& b, int n, const PickRequest& r = {}) {
  std::string out;
  for (int k = 0; k < n; ++k) {
    Pick p = b.pick(r);
    if (p.status == PickStatus::Picked) {
      b.on_connect_start(p.server);
      out += b.server(p.server).name;
    } else {
      out += p.status == PickStatus::Queue ? "-" : "!";
    }
  }
  return out;
}

ServerIndex idx(const Balancer& b, std::string_view name) {
  auto i = b.find(name);
  EXPECT_TRUE(i.has_value()) << name;
  return i.value_or(0);
}

config::Address v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  config::Address x;
  x.bytes[0] = a;
  x.bytes[1] = b;
  x.bytes[2] = c;
  x.bytes[3] = d;
  return x;
}

const SteadyTime t0{std::chrono::seconds(1000)};

// ---- roundrobin ------------------------------------------------------------------------

TEST(BalanceRoundRobin, ClassicFiveOneOneSequence) {
  Balancer b({srv("a", 5), srv("b", 1), srv("c", 1)}, opts(Balance::RoundRobin));
  // nginx's smooth WRR: the heavy server's picks are spread, not bunched.
  EXPECT_EQ(picks(b, 14), "aabacaaaabacaa");
}

TEST(BalanceRoundRobin, EqualWeightsTakeTurns) {
  Balancer b({srv("a"), srv("b"), srv("c")}, opts(Balance::RoundRobin));
  std::string seq = picks(b, 30);
  EXPECT_EQ(seq, "abcabcabcabcabcabcabcabcabcabc");
  for (size_t k = 1; k < seq.size(); ++k) EXPECT_NE(seq[k], seq[k - 1]) << k;
}

TEST(BalanceRoundRobin, ExactCountsOverEachCycle) {
  Balancer b({srv("a", 3), srv("b", 7), srv("c", 1), srv("d", 5)}, opts(Balance::RoundRobin));
  for (int cycle = 0; cycle < 10; ++cycle) {
    std::map<char, int> count;
    for (char c : picks(b, 16)) ++count[c];  // one cycle: the sum of the weights
    EXPECT_EQ(count['a'], 3);
    EXPECT_EQ(count['b'], 7);
    EXPECT_EQ(count['c'], 1);
    EXPECT_EQ(count['d'], 5);
  }
}

TEST(BalanceRoundRobin, HeaviestServerNeverBunched) {
  // b has weight 7 of 16: it never gets three picks in a row.
  Balancer b({srv("a", 3), srv("b", 7), srv("c", 1), srv("d", 5)}, opts(Balance::RoundRobin));
  std::string seq = picks(b, 160);
  EXPECT_EQ(seq.find("bbb"), std::string::npos) << seq;
  EXPECT_EQ(seq.find("dd"), std::string::npos) << seq;
}

TEST(BalanceRoundRobin, WeightChangeStartsAFreshCycle) {
  Balancer b({srv("a"), srv("b")}, opts(Balance::RoundRobin));
  EXPECT_EQ(picks(b, 3), "aba");
  b.set_weight(idx(b, "a"), 3);
  EXPECT_EQ(picks(b, 8), "aabaaaba");  // {3,1} from zero, as if new
  b.set_weight(idx(b, "a"), 1000);  // clamped to 256
  EXPECT_EQ(b.server(idx(b, "a")).weight, 256u);
}

TEST(BalanceRoundRobin, FullServerSitsOutWithoutBankingCredit) {
  Balancer b({srv("a", 1, 1), srv("b", 1)}, opts(Balance::RoundRobin));
  EXPECT_EQ(connect(b, 1), "a");
  EXPECT_EQ(picks(b, 4), "bbbb");  // a is full
  b.on_connection_end(idx(b, "a"), t0);
  // a did not bank the four rounds it sat out, so it is not picked four times in a row now:
  // the two take turns, b first since a had the last pick between them.
  EXPECT_EQ(picks(b, 4), "baba");
}

// ---- states, weights, backups, panic ---------------------------------------------------

TEST(BalanceStates, DownDrainMaintAndWeightZeroTakeNoNewConnections) {
  Balancer b({srv("a", 1, 0, ServerState::Drain), srv("b", 1, 0, ServerState::Maint),
              srv("c", 1, 0, ServerState::Down), srv("d"), srv("e", 0)},
             opts(Balance::RoundRobin));
  EXPECT_EQ(picks(b, 5), "ddddd");
  b.set_state(idx(b, "d"), ServerState::Drain);
  EXPECT_EQ(picks(b, 2), "!!");
  b.set_state(idx(b, "c"), ServerState::Up);
  EXPECT_EQ(picks(b, 2), "cc");
}

TEST(BalanceStates, SameForEveryAlgorithm) {
  for (Balance algo : {Balance::RoundRobin, Balance::LeastConn, Balance::Source, Balance::SingleWriter}) {
    SCOPED_TRACE(config::to_string(algo));
    Balancer b({srv("a", 1, 0, ServerState::Drain), srv("b", 1, 0, ServerState::Maint),
                srv("c", 1, 0, ServerState::Down), srv("d"), srv("e", 0)},
               opts(algo));
    PickRequest r;
    r.hash = hash_address(v4(192, 0, 2, 7));
    EXPECT_EQ(picks(b, 4, r), "dddd");
  }
}

TEST(BalanceStates, DrainLetsExistingConnectionsFinish) {
  Balancer b({srv("a"), srv("b")}, opts(Balance::LeastConn));
  EXPECT_EQ(connect(b, 2), "ab");
  b.set_state(idx(b, "a"), ServerState::Drain);
  EXPECT_EQ(b.active(idx(b, "a")), 1u);  // not cut
  EXPECT_EQ(connect(b, 2), "bb");
  b.on_connection_end(idx(b, "a"), t0);
  EXPECT_EQ(b.active(idx(b, "a")), 0u);
  b.on_connection_end(idx(b, "a"), t0);  // an extra end does not wrap around
  EXPECT_EQ(b.active(idx(b, "a")), 0u);
}

TEST(BalanceStates, FirstUsableBackupServesOnlyWhenNoActiveServerIs) {
  Balancer b({srv("a"), backup("x"), srv("b"), backup("y")}, opts(Balance::RoundRobin));
  EXPECT_EQ(picks(b, 4), "abab");
  b.set_state(idx(b, "a"), ServerState::Down);
  EXPECT_EQ(picks(b, 2), "bb");
  b.set_state(idx(b, "b"), ServerState::Maint);
  EXPECT_EQ(b.candidates().kind, Candidates::Kind::Backup);
  EXPECT_EQ(picks(b, 3), "xxx");  // HAProxy without allbackups: the first backup only
  b.set_state(idx(b, "x"), ServerState::Down);
  EXPECT_EQ(picks(b, 2), "yy");
  b.set_state(idx(b, "a"), ServerState::Up);
  EXPECT_EQ(picks(b, 2), "aa");
}

TEST(BalancePanic, ThresholdChoosesTheCandidateSet) {
  std::vector<ServerSpec> s = {srv("a"), srv("b", 1, 0, ServerState::Down), srv("c", 1, 0, ServerState::Down),
                               srv("d", 1, 0, ServerState::Down)};
  // 1 of 4 up: 25%.
  EXPECT_EQ(choose_candidates(s, 0).kind, Candidates::Kind::Active);  // 0: panic off
  EXPECT_EQ(choose_candidates(s, 25).kind, Candidates::Kind::Active);  // not below
  EXPECT_EQ(choose_candidates(s, 26).kind, Candidates::Kind::Panic);
  s[1].state = ServerState::Up;  // 2 of 4: 50%
  EXPECT_EQ(choose_candidates(s, 50).kind, Candidates::Kind::Active);
  EXPECT_EQ(choose_candidates(s, 51).kind, Candidates::Kind::Panic);
  // Servers an operator took out do not count: 2 up of 2 counted.
  s[2].state = ServerState::Maint;
  s[3].state = ServerState::Drain;
  EXPECT_EQ(choose_candidates(s, 100).kind, Candidates::Kind::Active);
  // Nobody up, nobody counted: none, even in panic.
  s[0].state = ServerState::Maint;
  s[1].state = ServerState::Drain;
  EXPECT_EQ(choose_candidates(s, 50).kind, Candidates::Kind::None);
}

TEST(BalancePanic, RoutesToDownServersButNeverToDrainOrMaint) {
  BalancerOptions o = opts(Balance::RoundRobin);
  o.panic_threshold_percent = 50;
  Balancer b({srv("a"), srv("b", 1, 0, ServerState::Down), srv("c", 1, 0, ServerState::Down),
              srv("d", 1, 0, ServerState::Maint), srv("e", 1, 0, ServerState::Drain),
              srv("f", 0, 0, ServerState::Down)},
             o);
  EXPECT_TRUE(b.panic());
  EXPECT_EQ(picks(b, 6), "abcabc");
  b.set_state(idx(b, "b"), ServerState::Up);  // 2 of 3: out of panic
  EXPECT_FALSE(b.panic());
  EXPECT_EQ(picks(b, 4), "abab");
  // Every counted server down: panic rather than nobody...
  b.set_state(idx(b, "a"), ServerState::Down);
  b.set_state(idx(b, "b"), ServerState::Down);
  EXPECT_TRUE(b.panic());
  EXPECT_EQ(picks(b, 3), "abc");
}

TEST(BalancePanic, UsableBackupBeatsPanic) {
  std::vector<ServerSpec> s = {srv("a", 1, 0, ServerState::Down), srv("b", 1, 0, ServerState::Down), backup("x")};
  Candidates c = choose_candidates(s, 50);
  EXPECT_EQ(c.kind, Candidates::Kind::Backup);
  EXPECT_EQ(c.backup, 2u);
  s[2].state = ServerState::Down;
  EXPECT_EQ(choose_candidates(s, 50).kind, Candidates::Kind::Panic);
  EXPECT_EQ(choose_candidates(s, 0).kind, Candidates::Kind::None);
  // Panic sends to the active servers, not to failed backups.
  c = choose_candidates(s, 50);
  EXPECT_TRUE(c.contains(0, s[0]));
  EXPECT_FALSE(c.contains(2, s[2]));
}

// ---- leastconn -------------------------------------------------------------------------

TEST(BalanceLeastConn, TiesAreTakenInTurn) {
  Balancer b({srv("a"), srv("b"), srv("c")}, opts(Balance::LeastConn));
  EXPECT_EQ(picks(b, 7), "abcabca");  // no connection started: always a three-way tie
  Balancer b2({srv("a"), srv("b"), srv("c")}, opts(Balance::LeastConn));
  EXPECT_EQ(connect(b2, 9), "abcabcabc");
}

TEST(BalanceLeastConn, FewestActiveWins) {
  Balancer b({srv("a"), srv("b"), srv("c")}, opts(Balance::LeastConn));
  EXPECT_EQ(connect(b, 6), "abcabc");
  b.on_connection_end(idx(b, "b"), t0);
  b.on_connection_end(idx(b, "b"), t0);
  b.on_connection_end(idx(b, "c"), t0);
  // a 2, b 0, c 1: b; then b and c tie at 1 and c is next in turn; then b (1 against 2).
  EXPECT_EQ(connect(b, 3), "bcb");
  EXPECT_EQ(connect(b, 3), "cab");  // all at 2: in turn, starting after the last pick
}

TEST(BalanceLeastConn, LoadIsRelativeToWeight) {
  Balancer b({srv("a", 2), srv("b", 1)}, opts(Balance::LeastConn));
  EXPECT_EQ(connect(b, 6), "ababaa");
  EXPECT_EQ(b.active(idx(b, "a")), 4u);
  EXPECT_EQ(b.active(idx(b, "b")), 2u);
  EXPECT_EQ(connect(b, 30).size(), 30u);
  EXPECT_EQ(b.active(idx(b, "a")), 24u);  // 2:1 exactly after a multiple of 3
  EXPECT_EQ(b.active(idx(b, "b")), 12u);
}

TEST(BalanceLeastConn, SkipsFullServers) {
  Balancer b({srv("a", 1, 1), srv("b", 1, 2)}, opts(Balance::LeastConn));
  EXPECT_EQ(connect(b, 4), "abb-");
}

// ---- source (consistent hashing) -------------------------------------------------------

std::vector<config::Address> client_addresses(int n) {
  std::vector<config::Address> out;
  for (int k = 0; k < n; ++k) {
    out.push_back(v4(10, static_cast<uint8_t>(k >> 16), static_cast<uint8_t>(k >> 8), static_cast<uint8_t>(k)));
  }
  return out;
}

std::vector<std::string> map_keys(Balancer& b, const std::vector<config::Address>& keys) {
  std::vector<std::string> out;
  for (const auto& a : keys) {
    PickRequest r;
    r.hash = hash_address(a);
    Pick p = b.pick(r);
    out.push_back(p.status == PickStatus::Picked ? b.server(p.server).name : "?");
  }
  return out;
}

std::vector<ServerSpec> five() { return {srv("s0"), srv("s1"), srv("s2"), srv("s3"), srv("s4")}; }

TEST(BalanceHash, KnownHashValues) {
  // Part of the behaviour: changing the hash remaps every client.
  EXPECT_EQ(hash_key(""), 0xefd01f60ba992926ULL);
  EXPECT_EQ(hash_key("a"), 0x82a2a958a9bece5bULL);  // fmix64(FNV-1a 64 "a" = 0xaf63dc4c8601ec8c)
  EXPECT_EQ(hash_address(v4(192, 0, 2, 1)), 0x803931826a2288eaULL);
  config::Address v6 = v4(192, 0, 2, 1);
  v6.family = config::Address::Family::V6;
  EXPECT_NE(hash_address(v6), hash_address(v4(192, 0, 2, 1)));  // all 16 bytes hashed
}

TEST(BalanceHash, SameClientSameServerAndKeysSpreadEvenly) {
  Balancer b(five(), opts(Balance::Source));
  auto keys = client_addresses(10000);
  auto first = map_keys(b, keys);
  EXPECT_EQ(map_keys(b, keys), first);  // deterministic, no round-robin state
  std::map<std::string, int> count;
  for (const auto& s : first) ++count[s];
  ASSERT_EQ(count.size(), 5u);
  for (const auto& [name, n] : count) {
    EXPECT_GE(n, 1500) << name;  // 2000 each ideally; 64 points per server
    EXPECT_LE(n, 2500) << name;
  }
}

TEST(BalanceHash, RemovingOneServerRemapsOnlyItsKeys) {
  Balancer b(five(), opts(Balance::Source));
  auto keys = client_addresses(10000);
  auto before = map_keys(b, keys);
  b.set_state(idx(b, "s2"), ServerState::Down);
  auto after = map_keys(b, keys);
  int on_s2 = 0;
  int moved = 0;
  for (size_t k = 0; k < keys.size(); ++k) {
    if (before[k] == "s2") {
      ++on_s2;
      EXPECT_NE(after[k], "s2");
    } else {
      EXPECT_EQ(after[k], before[k]) << k;
    }
    if (after[k] != before[k]) ++moved;
  }
  EXPECT_EQ(moved, on_s2);
  EXPECT_GE(on_s2, 1500);
  EXPECT_LE(on_s2, 2500);
  b.set_state(idx(b, "s2"), ServerState::Up);
  EXPECT_EQ(map_keys(b, keys), before);  // back: the same mapping
}

TEST(BalanceHash, RemovingAServerFromTheConfigKeepsTheOthersKeys) {
  // The points come from names: a pool built without s2 (a reload) maps like s2 being down.
  Balancer full(five(), opts(Balance::Source));
  Balancer without({srv("s0"), srv("s1"), srv("s3"), srv("s4")}, opts(Balance::Source));
  auto keys = client_addresses(10000);
  auto before = map_keys(full, keys);
  auto after = map_keys(without, keys);
  for (size_t k = 0; k < keys.size(); ++k) {
    if (before[k] != "s2") {
      EXPECT_EQ(after[k], before[k]) << k;
    }
  }
  Balancer again(five(), opts(Balance::Source));
  EXPECT_EQ(map_keys(again, keys), before);
}

TEST(BalanceHash, ShareFollowsWeight) {
  Balancer b({srv("a", 1), srv("b", 3)}, opts(Balance::Source));
  auto keys = client_addresses(10000);
  int on_b = 0;
  for (const auto& s : map_keys(b, keys)) on_b += s == "b";
  EXPECT_GE(on_b, 7000);  // 7500 ideally
  EXPECT_LE(on_b, 8000);
}

TEST(BalanceHash, FullServerPassesItsKeysOnUntilItHasRoom) {
  Balancer b({srv("a", 1, 1), srv("b"), srv("c")}, opts(Balance::Source));
  auto keys = client_addresses(300);
  auto before = map_keys(b, keys);
  b.on_connect_start(idx(b, "a"));  // a is full
  auto during = map_keys(b, keys);
  for (size_t k = 0; k < keys.size(); ++k) {
    if (before[k] == "a") {
      EXPECT_NE(during[k], "a");
    } else {
      EXPECT_EQ(during[k], before[k]);
    }
  }
  b.on_connection_end(idx(b, "a"), t0);
  EXPECT_EQ(map_keys(b, keys), before);
}

TEST(BalanceHash, KeyStringsAndFallbackToRoundRobin) {
  Balancer b(five(), opts(Balance::Source));
  PickRequest r;
  r.hash = hash_key("tenant-42");
  Pick p = b.pick(r);
  ASSERT_EQ(p.status, PickStatus::Picked);
  for (int k = 0; k < 5; ++k) EXPECT_EQ(b.pick(r).server, p.server);
  // No key (no client address to hash): roundrobin, as HAProxy does.
  EXPECT_EQ(picks(b, 5), "s0s1s2s3s4");
}

// ---- single-writer ---------------------------------------------------------------------

TEST(BalanceSingleWriter, FirstUsableServerTakesEverything) {
  Balancer b({srv("a", 1, 0, ServerState::Down), srv("b"), srv("c")}, opts(Balance::SingleWriter));
  ASSERT_TRUE(b.writer().has_value());
  EXPECT_EQ(*b.writer(), idx(b, "b"));
  EXPECT_EQ(b.writer_generation(), 0u);
  EXPECT_EQ(connect(b, 5), "bbbbb");
}

TEST(BalanceSingleWriter, NoFailbackAndGenerationCounter) {
  Balancer b({srv("a"), srv("b"), srv("c")}, opts(Balance::SingleWriter));
  EXPECT_EQ(picks(b, 2), "aa");
  EXPECT_EQ(b.writer_generation(), 0u);
  b.set_state(idx(b, "a"), ServerState::Down);
  EXPECT_EQ(picks(b, 2), "bb");
  EXPECT_EQ(b.writer_generation(), 1u);
  b.set_state(idx(b, "a"), ServerState::Up);  // a is back: b stays writer
  EXPECT_EQ(picks(b, 2), "bb");
  EXPECT_EQ(b.writer_generation(), 1u);
  b.set_state(idx(b, "c"), ServerState::Down);  // a standby changing: nothing happens
  EXPECT_EQ(b.writer_generation(), 1u);
  b.set_state(idx(b, "b"), ServerState::Drain);  // drain moves the writer too
  EXPECT_EQ(picks(b, 2), "aa");
  EXPECT_EQ(b.writer_generation(), 2u);
  b.set_state(idx(b, "a"), ServerState::Maint);  // nobody left
  EXPECT_FALSE(b.writer().has_value());
  EXPECT_EQ(picks(b, 1), "!");
  EXPECT_EQ(b.writer_generation(), 3u);
  b.set_state(idx(b, "c"), ServerState::Up);
  EXPECT_EQ(picks(b, 1), "c");
  EXPECT_EQ(b.writer_generation(), 4u);
}

TEST(BalanceSingleWriter, WeightZeroIsNotAWriter) {
  Balancer b({srv("a", 0), srv("b")}, opts(Balance::SingleWriter));
  EXPECT_EQ(picks(b, 1), "b");
  b.set_weight(idx(b, "b"), 0);
  EXPECT_FALSE(b.writer().has_value());
}

TEST(BalanceSingleWriter, ExternallyChosenWriter) {
  Balancer b({srv("a"), srv("b"), srv("c", 1, 0, ServerState::Down)}, opts(Balance::SingleWriter));
  EXPECT_TRUE(b.set_writer("b"));
  EXPECT_EQ(picks(b, 2), "bb");
  EXPECT_EQ(b.writer_generation(), 1u);
  EXPECT_TRUE(b.set_writer("b"));  // already: no change
  EXPECT_EQ(b.writer_generation(), 1u);
  EXPECT_FALSE(b.set_writer("c"));  // down: refused
  EXPECT_FALSE(b.set_writer("nope"));
  EXPECT_EQ(picks(b, 1), "b");
  EXPECT_EQ(b.writer_generation(), 1u);
  // When the chosen writer goes, the usual rule applies and it does not come back by itself.
  b.set_state(idx(b, "b"), ServerState::Down);
  EXPECT_EQ(picks(b, 1), "a");
  b.set_state(idx(b, "b"), ServerState::Up);
  EXPECT_EQ(picks(b, 1), "a");
  EXPECT_EQ(b.writer_generation(), 2u);
  // Only single-writer pools have a writer.
  Balancer rr({srv("a"), srv("b")}, opts(Balance::RoundRobin));
  EXPECT_FALSE(rr.set_writer("b"));
  EXPECT_FALSE(rr.writer().has_value());
}

TEST(BalanceSingleWriter, BackupsStandBehindTheOthers) {
  Balancer b({backup("x"), srv("a", 1, 0, ServerState::Down), srv("b", 1, 0, ServerState::Down)},
             opts(Balance::SingleWriter));
  EXPECT_EQ(picks(b, 1), "x");
  b.set_state(idx(b, "b"), ServerState::Up);  // no failback to a non-backup either
  EXPECT_EQ(picks(b, 1), "x");
  b.set_state(idx(b, "x"), ServerState::Down);
  EXPECT_EQ(picks(b, 1), "b");
}

TEST(BalanceSingleWriter, FullWriterQueuesInsteadOfMoving) {
  Balancer b({srv("a", 1, 1), srv("b")}, opts(Balance::SingleWriter));
  EXPECT_EQ(connect(b, 2), "a-");
  EXPECT_EQ(*b.writer(), idx(b, "a"));
  EXPECT_EQ(b.writer_generation(), 0u);
}

TEST(BalanceSingleWriter, RetriesStayOnTheWriter) {
  Balancer b({srv("a"), srv("b")}, opts(Balance::SingleWriter));
  TriedSet tried;
  tried.add(idx(b, "a"));
  PickRequest r;
  r.tried = &tried;
  EXPECT_EQ(picks(b, 2, r), "aa");  // never a second writer
}

// ---- maxconn and the queue -------------------------------------------------------------

TEST(BalanceQueue, FullPoolQueuesFifoAndHandsFreedSlotsInOrder) {
  Balancer b({srv("a", 1, 1), srv("b", 1, 1)}, opts(Balance::RoundRobin, 3));
  EXPECT_EQ(connect(b, 3), "ab-");
  Enqueued q1 = b.enqueue(101, t0);
  Enqueued q2 = b.enqueue(102, t0 + milliseconds{1});
  Enqueued q3 = b.enqueue(103, t0 + milliseconds{2});
  EXPECT_EQ(q1.status, EnqueueStatus::Queued);
  EXPECT_EQ(q2.status, EnqueueStatus::Queued);
  EXPECT_EQ(q3.status, EnqueueStatus::Queued);
  EXPECT_EQ(b.enqueue(104, t0).status, EnqueueStatus::QueueFull);  // maxqueue 3: 503 at once
  EXPECT_EQ(b.queued(), 3u);
  EXPECT_FALSE(b.dispatch(t0 + milliseconds{10}).has_value());  // nobody has room

  auto h = b.on_connection_end(idx(b, "b"), t0 + milliseconds{10});
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->cookie, 101u);
  EXPECT_EQ(h->server, idx(b, "b"));
  b.on_connect_start(h->server);
  h = b.on_connection_end(idx(b, "a"), t0 + milliseconds{20});
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->cookie, 102u);
  EXPECT_EQ(h->server, idx(b, "a"));
  b.on_connect_start(h->server);
  EXPECT_EQ(b.queued(), 1u);
  EXPECT_EQ(b.enqueue(105, t0 + milliseconds{30}).status, EnqueueStatus::Queued);
  h = b.on_connection_end(idx(b, "a"), t0 + milliseconds{40});
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->cookie, 103u);
  b.on_connect_start(h->server);
  h = b.on_connection_end(idx(b, "b"), t0 + milliseconds{50});
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->cookie, 105u);
  b.on_connect_start(h->server);
  EXPECT_EQ(b.queued(), 0u);
  EXPECT_FALSE(b.on_connection_end(idx(b, "b"), t0 + milliseconds{60}).has_value());
  EXPECT_EQ(b.active(idx(b, "a")), 1u);
  EXPECT_EQ(b.active(idx(b, "b")), 0u);
}

TEST(BalanceQueue, WaitersExpireAfterTheQueueTimeout) {
  Balancer b({srv("a", 1, 1)}, opts(Balance::LeastConn, 0, milliseconds{5000}));
  EXPECT_EQ(connect(b, 2), "a-");
  EXPECT_FALSE(b.next_expiry().has_value());
  b.enqueue(1, t0);
  b.enqueue(2, t0 + milliseconds{1000});
  b.enqueue(3, t0 + milliseconds{3000});
  EXPECT_EQ(b.next_expiry(), t0 + milliseconds{5000});
  EXPECT_FALSE(b.pop_expired(t0 + milliseconds{4999}).has_value());
  EXPECT_EQ(b.pop_expired(t0 + milliseconds{5000}), 1u);
  EXPECT_FALSE(b.pop_expired(t0 + milliseconds{5000}).has_value());
  EXPECT_EQ(b.next_expiry(), t0 + milliseconds{6000});
  // At 7 s waiter 2 (6 s) has expired and 3 (8 s) has not: the freed slot goes to 3 and 2 is left for
  // pop_expired(), so no one is connected after its time-out.
  auto h = b.on_connection_end(idx(b, "a"), t0 + milliseconds{7000});
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->cookie, 3u);
  EXPECT_EQ(b.pop_expired(t0 + milliseconds{7000}), 2u);
  EXPECT_EQ(b.queued(), 0u);
  EXPECT_FALSE(b.next_expiry().has_value());
}

TEST(BalanceQueue, ZeroQueueTimeoutMeansNoQueue) {
  Balancer b({srv("a", 1, 1)}, opts(Balance::RoundRobin, 0, milliseconds{0}));
  EXPECT_EQ(connect(b, 2), "a-");
  EXPECT_EQ(b.enqueue(1, t0).status, EnqueueStatus::NoQueue);
  EXPECT_EQ(b.queued(), 0u);
}

TEST(BalanceQueue, CancelledWaitersAreSkipped) {
  Balancer b({srv("a", 1, 1)}, opts(Balance::RoundRobin, 2));
  EXPECT_EQ(connect(b, 1), "a");
  Enqueued q1 = b.enqueue(1, t0);
  Enqueued q2 = b.enqueue(2, t0);
  EXPECT_EQ(b.enqueue(3, t0).status, EnqueueStatus::QueueFull);
  EXPECT_TRUE(b.cancel(q1.ticket));
  EXPECT_FALSE(b.cancel(q1.ticket));  // once
  EXPECT_FALSE(b.cancel(QueueTicket{}));
  EXPECT_EQ(b.queued(), 1u);
  Enqueued q3 = b.enqueue(3, t0);  // the cancelled one's place is free again
  EXPECT_EQ(q3.status, EnqueueStatus::Queued);
  auto h = b.on_connection_end(idx(b, "a"), t0);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->cookie, 2u);
  EXPECT_FALSE(b.cancel(q2.ticket));  // already handed a server
  b.on_connect_start(h->server);
  EXPECT_TRUE(b.cancel(q3.ticket));
  EXPECT_EQ(b.queued(), 0u);
}

TEST(BalanceQueue, ManyWaitersKeepTheirOrderAcrossGrowth) {
  Balancer b({srv("a", 1, 1)}, opts(Balance::RoundRobin));
  EXPECT_EQ(connect(b, 1), "a");
  std::vector<QueueTicket> tickets;
  for (uint64_t k = 0; k < 100; ++k) tickets.push_back(b.enqueue(k, t0).ticket);
  for (uint64_t k = 0; k < 100; k += 3) EXPECT_TRUE(b.cancel(tickets[k]));
  for (uint64_t k = 100; k < 150; ++k) b.enqueue(k, t0);  // grows past the cancelled holes
  std::vector<uint64_t> order;
  while (auto h = b.on_connection_end(idx(b, "a"), t0)) {
    order.push_back(h->cookie);
    b.on_connect_start(h->server);
  }
  std::vector<uint64_t> want;
  for (uint64_t k = 0; k < 150; ++k) {
    if (k >= 100 || k % 3 != 0) want.push_back(k);
  }
  EXPECT_EQ(order, want);
  EXPECT_EQ(b.queued(), 0u);
}

TEST(BalanceQueue, SlotOnADrainingServerIsNotHandedOut) {
  Balancer b({srv("a", 1, 1), srv("b", 1, 1)}, opts(Balance::RoundRobin));
  EXPECT_EQ(connect(b, 2), "ab");
  b.enqueue(7, t0);
  b.set_state(idx(b, "a"), ServerState::Drain);
  EXPECT_FALSE(b.on_connection_end(idx(b, "a"), t0).has_value());
  EXPECT_EQ(b.queued(), 1u);
  auto h = b.on_connection_end(idx(b, "b"), t0);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->server, idx(b, "b"));
}

TEST(BalanceQueue, DispatchAfterAServerComesBack) {
  Balancer b({srv("a", 1, 1), srv("b", 1, 0, ServerState::Down)}, opts(Balance::RoundRobin));
  EXPECT_EQ(connect(b, 2), "a-");
  b.enqueue(1, t0);
  b.enqueue(2, t0);
  b.set_state(idx(b, "b"), ServerState::Up);
  auto h = b.dispatch(t0);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->cookie, 1u);
  EXPECT_EQ(h->server, idx(b, "b"));
  b.on_connect_start(h->server);
  h = b.dispatch(t0);  // b has no maxconn: it takes the next one too
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->cookie, 2u);
  EXPECT_FALSE(b.dispatch(t0).has_value());
}

TEST(BalanceQueue, RaisingMaxconnMakesRoom) {
  Balancer b({srv("a", 1, 1)}, opts(Balance::LeastConn));
  EXPECT_EQ(connect(b, 2), "a-");
  b.enqueue(9, t0);
  b.set_maxconn(idx(b, "a"), 2);
  auto h = b.dispatch(t0);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->cookie, 9u);
}

TEST(BalanceQueue, WaiterIsNotHandedAServerItAlreadyTried) {
  Balancer b({srv("a", 1, 1), srv("b", 1, 1)}, opts(Balance::RoundRobin));
  EXPECT_EQ(connect(b, 2), "ab");
  TriedSet tried_b;
  tried_b.add(idx(b, "b"));
  PickRequest retry;
  retry.tried = &tried_b;
  EXPECT_EQ(b.pick(retry).status, PickStatus::Queue);
  b.enqueue(1, t0, retry);  // a retry whose connect to b failed
  b.enqueue(2, t0);
  auto h = b.on_connection_end(idx(b, "b"), t0);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->cookie, 2u);  // 1 passes its turn for b
  b.on_connect_start(h->server);
  h = b.on_connection_end(idx(b, "a"), t0);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->cookie, 1u);
  EXPECT_EQ(h->server, idx(b, "a"));
}

TEST(BalanceQueue, SingleWriterHandsOnlyTheWritersSlots) {
  Balancer b({srv("a", 1, 1), srv("b", 1, 1)}, opts(Balance::SingleWriter));
  EXPECT_EQ(connect(b, 2), "a-");
  b.set_state(idx(b, "a"), ServerState::Down);  // b takes over
  EXPECT_EQ(connect(b, 2), "b-");
  b.enqueue(1, t0);
  // The old writer's last session ends: its slot is no use to anyone.
  EXPECT_FALSE(b.on_connection_end(idx(b, "a"), t0).has_value());
  auto h = b.on_connection_end(idx(b, "b"), t0);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->server, idx(b, "b"));
}

TEST(BalanceQueue, QueuedSourceClientKeepsItsServerWhenItHasRoom) {
  Balancer b({srv("a", 1, 1), srv("b", 1, 1), srv("c", 1, 1)}, opts(Balance::Source));
  PickRequest r;
  r.hash = hash_address(v4(192, 0, 2, 55));
  ServerIndex home = b.pick(r).server;
  EXPECT_EQ(connect(b, 3), "abc");
  EXPECT_EQ(b.pick(r).status, PickStatus::Queue);
  b.enqueue(1, t0, r);
  auto h = b.on_connection_end(home, t0);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->server, home);
}

// ---- retries ---------------------------------------------------------------------------

TEST(BalanceRetry, TriedServersAreSkipped) {
  for (Balance algo : {Balance::RoundRobin, Balance::LeastConn, Balance::Source}) {
    SCOPED_TRACE(config::to_string(algo));
    Balancer b({srv("a"), srv("b"), srv("c")}, opts(algo));
    TriedSet tried;
    PickRequest r;
    r.hash = hash_address(v4(192, 0, 2, 9));
    r.tried = &tried;
    std::string order;
    for (int attempt = 0; attempt < 3; ++attempt) {
      Pick p = b.pick(r);
      ASSERT_EQ(p.status, PickStatus::Picked);
      EXPECT_FALSE(tried.contains(p.server));
      tried.add(p.server);
      order += b.server(p.server).name;
    }
    EXPECT_EQ(tried.size(), 3u);
    EXPECT_EQ(b.pick(r).status, PickStatus::Unavailable);  // every server tried
    std::sort(order.begin(), order.end());
    EXPECT_EQ(order, "abc");
  }
}

TEST(BalanceRetry, UntriedButFullMeansQueue) {
  Balancer b({srv("a"), srv("b", 1, 1)}, opts(Balance::RoundRobin));
  b.on_connect_start(idx(b, "b"));
  TriedSet tried;
  tried.add(idx(b, "a"));
  PickRequest r;
  r.tried = &tried;
  EXPECT_EQ(b.pick(r).status, PickStatus::Queue);
}

TEST(BalanceRetry, TriedSetIsBounded) {
  TriedSet t;
  for (ServerIndex i = 0; i < 20; ++i) t.add(i);
  t.add(3);
  EXPECT_EQ(t.size(), TriedSet::kCapacity);
  EXPECT_TRUE(t.contains(11));
  EXPECT_FALSE(t.contains(12));
  t.clear();
  EXPECT_FALSE(t.contains(0));
}

TEST(BalanceRetry, RetryAction) {
  EXPECT_EQ(retry_action(1, 3, true), RetryAction::OtherServer);
  EXPECT_EQ(retry_action(3, 3, true), RetryAction::OtherServer);
  EXPECT_EQ(retry_action(4, 3, true), RetryAction::GiveUp);
  EXPECT_EQ(retry_action(1, 3, false), RetryAction::SameServer);
  EXPECT_EQ(retry_action(4, 3, false), RetryAction::GiveUp);
  EXPECT_EQ(retry_action(1, 0, true), RetryAction::GiveUp);
}

// ---- from the config -------------------------------------------------------------------

TEST(BalanceConfig, ServiceToSpecsAndOptions) {
  config::Service s;
  s.balance = Balance::LeastConn;
  s.maxqueue = 64;
  s.timeouts.queue = milliseconds{2500};
  config::Server a;
  a.name = "a";
  a.address = *config::parse_endpoint("192.0.2.10:80");
  a.weight = 4;
  a.maxconn = 10;
  config::Server x;
  x.name = "x";
  x.backup = true;
  s.servers = {a, x};
  auto specs = server_specs(s);
  ASSERT_EQ(specs.size(), 2u);
  EXPECT_EQ(specs[0].name, "a");
  EXPECT_EQ(specs[0].address.str(), "192.0.2.10:80");
  EXPECT_EQ(specs[0].weight, 4u);
  EXPECT_EQ(specs[0].maxconn, 10u);
  EXPECT_EQ(specs[0].state, ServerState::Up);
  EXPECT_EQ(specs[1].maxconn, 0u);  // unset: no limit
  EXPECT_TRUE(specs[1].backup);
  BalancerOptions o = balancer_options(s);
  EXPECT_EQ(o.balance, Balance::LeastConn);
  EXPECT_EQ(o.maxqueue, 64u);
  EXPECT_EQ(o.queue_timeout, milliseconds{2500});
  EXPECT_EQ(o.panic_threshold_percent, 0u);
  EXPECT_STREQ(to_string(ServerState::Drain), "drain");
}

}  // namespace
}  // namespace hafront::proxy
