// The pure rules of the lease protocol (src/cluster/lease_rules.h, doc/lease.md).
#include "cluster/lease_rules.h"

#include <gtest/gtest.h>

namespace hafront::cluster::lease {
namespace {

TEST(LeaseRules, AMajorityWithThisNodeAcknowledges) {
  EXPECT_EQ(acks_needed(3, 0), 1u);  // 3 nodes: this one and one other
  EXPECT_EQ(acks_needed(5, 0), 2u);
  EXPECT_EQ(acks_needed(4, 0), 2u);  // 4 nodes: a majority is 3
  EXPECT_EQ(acks_needed(2, 0), 1u);  // two_node: the other node, or...
  EXPECT_EQ(acks_needed(2, 1), 0u);  // ...the other node fenced: alone, from its own state
  EXPECT_EQ(acks_needed(5, 1), 1u);
  EXPECT_EQ(acks_needed(5, 4), 0u);
}

TEST(LeaseRules, RenewsFromTheNewestStateEnoughMembersAcked) {
  EXPECT_EQ(renewable_seq({7, 9}, 1), 9u);   // one ack needed: the newest
  EXPECT_EQ(renewable_seq({7, 9}, 2), 7u);   // both needed: the older one is acked by both
  EXPECT_EQ(renewable_seq({9, 7, 8}, 2), 8u);
  EXPECT_EQ(renewable_seq({9}, 2), std::nullopt);  // a paused member's missing ack blocks only when needed
  EXPECT_EQ(renewable_seq({}, 1), std::nullopt);
  EXPECT_EQ(renewable_seq({5}, 0), std::nullopt);  // the caller handles "nobody needed"
}

TEST(LeaseRules, AttestationsFromAnotherMembershipOrBeforeTheNodesLastStateAreStale) {
  EXPECT_TRUE(attestation_valid(4, 4, 10, 10));
  EXPECT_TRUE(attestation_valid(4, 4, 10, 0));        // nothing heard from it since the change
  EXPECT_FALSE(attestation_valid(4, 4, 9, 10));       // it was heard after what the attester knew
  EXPECT_FALSE(attestation_valid(3, 4, 10, 10));      // sent before the attester saw this membership
  EXPECT_FALSE(attestation_valid(4, std::nullopt, 10, 0));  // no state from the attester since the change
  EXPECT_FALSE(attestation_valid(std::nullopt, 4, 10, 0));
}

TEST(LeaseRules, TheProofFreesWhatEveryAttesterThatSawItSawLeased) {
  using S = std::set<std::string>;
  EXPECT_EQ(freed({{2, S{"db", "web"}}, {3, S{"db", "web"}}}), (S{"db", "web"}));
  EXPECT_EQ(freed({{2, S{"db", "web"}}, {3, S{"db"}}}), (S{"db"}));
  EXPECT_EQ(freed({{2, S{"db"}}, {3, std::nullopt}}), (S{"db"}));  // 3 restarted and saw nothing
  EXPECT_EQ(freed({{2, std::nullopt}, {3, std::nullopt}}), S{});    // nobody knows: the fence decides
  EXPECT_EQ(freed({}), S{});
}

}  // namespace
}  // namespace hafront::cluster::lease
