#include "config/units.h"

#include <gtest/gtest.h>

namespace hafront::config {
namespace {

TEST(Duration, ParsesEveryUnit) {
  EXPECT_EQ(parse_duration("300ms"), Duration{300});
  EXPECT_EQ(parse_duration("2s"), Duration{2000});
  EXPECT_EQ(parse_duration("1.5s"), Duration{1500});
  EXPECT_EQ(parse_duration("90m"), Duration{90 * 60'000});
  EXPECT_EQ(parse_duration("2h"), Duration{2 * 3'600'000});
  EXPECT_EQ(parse_duration("1d"), Duration{86'400'000});
  EXPECT_EQ(parse_duration("0"), Duration{0});
  EXPECT_EQ(parse_duration("0s"), Duration{0});
}

TEST(Duration, RefusesMissingOrUnknownUnits) {
  EXPECT_FALSE(parse_duration("10"));
  EXPECT_FALSE(parse_duration("10 s"));
  EXPECT_FALSE(parse_duration("10sec"));
  EXPECT_FALSE(parse_duration("s"));
  EXPECT_FALSE(parse_duration(""));
  EXPECT_FALSE(parse_duration("-1s"));
  EXPECT_FALSE(parse_duration(".5s"));
  EXPECT_FALSE(parse_duration("1.s"));
  EXPECT_FALSE(parse_duration("1.2.3s"));
}

TEST(Duration, RefusesFractionsOfAMillisecondAndOverflow) {
  EXPECT_FALSE(parse_duration("1.5ms"));
  EXPECT_EQ(parse_duration("0.001s"), Duration{1});
  EXPECT_FALSE(parse_duration("0.0001s"));
  EXPECT_FALSE(parse_duration("99999999999999999999d"));
  EXPECT_FALSE(parse_duration("4000d"));  // over ten years
}

TEST(Duration, FormatsShortestExactForm) {
  EXPECT_EQ(format_duration(Duration{0}), "0");
  EXPECT_EQ(format_duration(Duration{1500}), "1500ms");
  EXPECT_EQ(format_duration(Duration{90'000}), "90s");
  EXPECT_EQ(format_duration(Duration{5'400'000}), "90m");
  EXPECT_EQ(format_duration(Duration{86'400'000}), "1d");
}

TEST(Size, ParsesBinaryUnits) {
  EXPECT_EQ(parse_size("512"), 512u);
  EXPECT_EQ(parse_size("16KiB"), 16u * 1024);
  EXPECT_EQ(parse_size("16k"), 16u * 1024);
  EXPECT_EQ(parse_size("4MiB"), 4u << 20);
  EXPECT_EQ(parse_size("1G"), 1u << 30);
  EXPECT_EQ(parse_size("1.5KiB"), 1536u);
  EXPECT_FALSE(parse_size("1.1B"));
  EXPECT_FALSE(parse_size("10 MiB"));
  EXPECT_FALSE(parse_size("10TiB"));
  EXPECT_FALSE(parse_size("-1"));
}

TEST(Address, ParsesV4AndV6) {
  auto a = parse_address("192.0.2.10");
  ASSERT_TRUE(a);
  EXPECT_FALSE(a->is_v6());
  EXPECT_EQ(a->str(), "192.0.2.10");
  auto b = parse_address("2001:db8::1");
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->is_v6());
  EXPECT_EQ(b->str(), "2001:db8::1");
  EXPECT_TRUE(parse_address("0.0.0.0")->is_unspecified());
  EXPECT_TRUE(parse_address("::")->is_unspecified());
  EXPECT_FALSE(parse_address("192.0.2"));
  EXPECT_FALSE(parse_address("192.0.2.256"));
  EXPECT_FALSE(parse_address("host.example"));
  EXPECT_FALSE(parse_address(""));
}

TEST(Cidr, NeedsAPrefixInRange) {
  auto c = parse_cidr("192.0.2.100/24");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->prefix, 24);
  EXPECT_EQ(c->str(), "192.0.2.100/24");
  EXPECT_TRUE(parse_cidr("2001:db8::5/128"));
  EXPECT_FALSE(parse_cidr("192.0.2.100"));
  EXPECT_FALSE(parse_cidr("192.0.2.100/33"));
  EXPECT_FALSE(parse_cidr("2001:db8::5/129"));
  EXPECT_FALSE(parse_cidr("192.0.2.100/"));
  EXPECT_FALSE(parse_cidr("192.0.2.100/2x"));
}

TEST(Endpoint, ParsesV4AndBracketedV6) {
  auto e = parse_endpoint("192.0.2.10:5000");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->port, 5000);
  EXPECT_EQ(e->str(), "192.0.2.10:5000");
  auto f = parse_endpoint("[2001:db8::1]:443");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->str(), "[2001:db8::1]:443");
  EXPECT_FALSE(parse_endpoint("2001:db8::1:443"));  // IPv6 needs brackets
  EXPECT_FALSE(parse_endpoint("[192.0.2.1]:80"));
  EXPECT_FALSE(parse_endpoint("192.0.2.10:0"));
  EXPECT_FALSE(parse_endpoint("192.0.2.10:65536"));
  EXPECT_FALSE(parse_endpoint("192.0.2.10"));
  EXPECT_FALSE(parse_endpoint("keystone:5000"));
}

TEST(Names, FollowTheDocumentedAlphabet) {
  EXPECT_TRUE(is_valid_name("ctrl-0"));
  EXPECT_TRUE(is_valid_name("nova_api.v2"));
  EXPECT_FALSE(is_valid_name(""));
  EXPECT_FALSE(is_valid_name("-lead"));
  EXPECT_FALSE(is_valid_name("has space"));
  EXPECT_FALSE(is_valid_name("colon:x"));
  EXPECT_FALSE(is_valid_name(std::string(64, 'a')));
  EXPECT_TRUE(is_valid_name(std::string(63, 'a')));
}

TEST(EditDistance, CountsEdits) {
  EXPECT_EQ(edit_distance("timeouts", "tmeouts"), 1u);
  EXPECT_EQ(edit_distance("rise", "rize"), 1u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("same", "same"), 0u);
}

}  // namespace
}  // namespace hafront::config
