// Hysteresis, exhaustively: every sequence of up to 10 results for rise and fall 1..4,
// against a reference model written differently (by runs of equal results), plus the
// cases an operator reasons about.
#include "health/hysteresis.h"

#include <gtest/gtest.h>

#include <vector>

namespace hafront::health {
namespace {

// The reference: the state after `results`, from the length of the trailing run of equal
// results since the last change of state.
ServerState reference(const std::vector<bool>& results, uint32_t rise, uint32_t fall) {
  ServerState state = ServerState::Unknown;
  uint32_t run = 0;  // equal results in a row against the current state, since the last change
  for (bool ok : results) {
    if (state == ServerState::Unknown) {
      state = ok ? ServerState::Up : ServerState::Down;
      run = 0;
      continue;
    }
    bool against = (state == ServerState::Up) != ok;
    run = against ? run + 1 : 0;
    uint32_t need = state == ServerState::Up ? fall : rise;
    if (run >= need) {
      state = state == ServerState::Up ? ServerState::Down : ServerState::Up;
      run = 0;
    }
  }
  return state;
}

TEST(Hysteresis, EverySequenceMatchesTheReference) {
  size_t sequences = 0;
  for (uint32_t rise = 1; rise <= 4; ++rise) {
    for (uint32_t fall = 1; fall <= 4; ++fall) {
      for (int len = 0; len <= 10; ++len) {
        for (uint32_t bits = 0; bits < (1u << len); ++bits) {
          std::vector<bool> results;
          CheckCounters c;
          for (int i = 0; i < len; ++i) {
            bool ok = (bits >> i) & 1;
            results.push_back(ok);
            HysteresisStep step = apply_check(c, rise, fall, ok);
            // A transition is reported exactly when the state changes, and names the new one.
            ASSERT_EQ(step.transition.has_value(), step.next.state != c.state);
            if (step.transition) {
              ASSERT_EQ(*step.transition, step.next.state);
              ASSERT_EQ(step.next.successes + step.next.failures, 0u) << "a new state starts with no run";
            }
            // Counters stay below what would have changed the state.
            ASSERT_LT(step.next.failures, fall);
            ASSERT_LT(step.next.successes, rise);
            ASSERT_TRUE(step.next.state == ServerState::Up || step.next.state == ServerState::Down);
            c = step.next;
            ASSERT_EQ(c.state, reference(results, rise, fall))
                << "rise " << rise << " fall " << fall << " after " << results.size() << " results";
          }
          ++sequences;
        }
      }
    }
  }
  EXPECT_EQ(sequences, 16u * 2047u);
}

TEST(Hysteresis, UnknownTakesTheFirstResult) {
  auto up = apply_check({}, 3, 3, true);
  EXPECT_EQ(up.next.state, ServerState::Up);
  EXPECT_EQ(up.transition, ServerState::Up);
  auto down = apply_check({}, 3, 3, false);
  EXPECT_EQ(down.next.state, ServerState::Down);
  EXPECT_EQ(down.transition, ServerState::Down);
}

TEST(Hysteresis, UpNeedsFallFailuresInARow) {
  CheckCounters c{ServerState::Up, 0, 0};
  c = apply_check(c, 2, 3, false).next;
  c = apply_check(c, 2, 3, false).next;
  EXPECT_EQ(c, (CheckCounters{ServerState::Up, 0, 2}));
  EXPECT_TRUE(changing(c));
  // A success in between starts over.
  c = apply_check(c, 2, 3, true).next;
  EXPECT_EQ(c, (CheckCounters{ServerState::Up, 0, 0}));
  EXPECT_FALSE(changing(c));
  c = apply_check(c, 2, 3, false).next;
  c = apply_check(c, 2, 3, false).next;
  auto step = apply_check(c, 2, 3, false);
  EXPECT_EQ(step.transition, ServerState::Down);
  EXPECT_EQ(step.next, (CheckCounters{ServerState::Down, 0, 0}));
}

TEST(Hysteresis, DownNeedsRiseSuccessesInARow) {
  CheckCounters c{ServerState::Down, 0, 0};
  auto step = apply_check(c, 2, 3, true);
  EXPECT_FALSE(step.transition);
  EXPECT_EQ(step.next, (CheckCounters{ServerState::Down, 1, 0}));
  EXPECT_TRUE(changing(step.next));
  c = apply_check(step.next, 2, 3, false).next;  // starts over
  EXPECT_EQ(c, (CheckCounters{ServerState::Down, 0, 0}));
  c = apply_check(c, 2, 3, true).next;
  step = apply_check(c, 2, 3, true);
  EXPECT_EQ(step.transition, ServerState::Up);
}

TEST(Hysteresis, ZeroRiseAndFallCountAsOne) {
  EXPECT_EQ(apply_check({ServerState::Up, 0, 0}, 0, 0, false).transition, ServerState::Down);
  EXPECT_EQ(apply_check({ServerState::Down, 0, 0}, 0, 0, true).transition, ServerState::Up);
}

TEST(Hysteresis, SteadyResultsReportNothing) {
  EXPECT_FALSE(apply_check({ServerState::Up, 0, 0}, 2, 2, true).transition);
  EXPECT_FALSE(apply_check({ServerState::Down, 0, 0}, 2, 2, false).transition);
}

}  // namespace
}  // namespace hafront::health
