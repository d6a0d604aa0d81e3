#include "control/protocol.h"

#include <gtest/gtest.h>

namespace hafront::control {
namespace {

TEST(Protocol, ParsesACommandWithAndWithoutArgs) {
  auto p = parse_request(R"({"command":"status"})");
  ASSERT_TRUE(p.request);
  EXPECT_EQ(p.request->command, "status");
  EXPECT_TRUE(p.request->args.empty());
  auto q = parse_request(R"({"command":"drain","args":{"server":"a"}})");
  ASSERT_TRUE(q.request);
  EXPECT_EQ(q.request->args.at("server").as_string(), "a");
}

TEST(Protocol, RefusesWhatIsNotARequest) {
  EXPECT_NE(parse_request("not json").error.find("not valid JSON"), std::string::npos);
  EXPECT_NE(parse_request("[1,2]").error.find("JSON object"), std::string::npos);
  EXPECT_NE(parse_request("{}").error.find("\"command\""), std::string::npos);
  EXPECT_NE(parse_request(R"({"command":5})").error.find("\"command\""), std::string::npos);
  EXPECT_NE(parse_request(R"({"command":"x","args":[]})").error.find("\"args\""), std::string::npos);
  EXPECT_NE(parse_request(R"({"command":"x","extra":1})").error.find("unknown field"), std::string::npos);
  EXPECT_FALSE(parse_request("").request);
  EXPECT_FALSE(parse_request(std::string("{\"command\":\"\xff\"}")).request);  // invalid UTF-8
}

TEST(Protocol, RefusesHugeAndDeepRequests) {
  std::string huge = R"({"command":")" + std::string(kMaxRequestBytes, 'a') + R"("})";
  EXPECT_NE(parse_request(huge).error.find("larger than"), std::string::npos);
  std::string deep = R"({"command":"x","args":{"a":)" + std::string(100, '[') + std::string(100, ']') + "}}";
  EXPECT_FALSE(parse_request(deep).request);
}

TEST(Protocol, RepliesRoundTrip) {
  auto ok = decode_reply(encode_reply(Reply::success(boost::json::object{{"a", 1}})));
  EXPECT_TRUE(ok.ok);
  EXPECT_EQ(ok.result.at("a").as_int64(), 1);
  auto bad = decode_reply(encode_reply(Reply::failure("nope", boost::json::object{{"errors", {"x"}}})));
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.error, "nope");
  EXPECT_TRUE(bad.details.is_object());
  EXPECT_FALSE(decode_reply("garbage").ok);
  EXPECT_FALSE(decode_reply(R"({"result":1})").ok);
}

TEST(Protocol, EncodedLinesEndWithOneNewline) {
  std::string r = encode_request("status");
  EXPECT_EQ(r, "{\"command\":\"status\"}\n");
  EXPECT_EQ(encode_reply(Reply::success(nullptr)).back(), '\n');
}

}  // namespace
}  // namespace hafront::control
