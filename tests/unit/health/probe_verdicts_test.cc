// The pure parts of the probes: HAProxy agent words (with garbage), the Galera require
// matching and its reasons, JSON field comparison, the HTTP verdict, body excerpts and the
// exec verdict.
#include <gtest/gtest.h>

#include <string>

#include "health/agent_words.h"
#include "health/probe_verdicts.h"

namespace hafront::health {
namespace {

// ---- agent words -------------------------------------------------------------------------

TEST(AgentWords, StatesWeightAndMessage) {
  AgentWords w = parse_agent_words("up 75% #all good\n");
  EXPECT_EQ(w.state, ServerState::Up);
  EXPECT_EQ(w.weight_percent, 75u);
  EXPECT_EQ(w.message, "all good");

  EXPECT_EQ(parse_agent_words("ready").state, ServerState::Up);
  EXPECT_EQ(parse_agent_words("drain").state, ServerState::Drain);
  EXPECT_EQ(parse_agent_words("maint").state, ServerState::Maint);
  for (const char* down : {"down", "fail", "failed", "stopped", "DOWN", "Stopped"}) {
    EXPECT_EQ(parse_agent_words(down).state, ServerState::Down) << down;
  }
}

TEST(AgentWords, SeparatorsAndCase) {
  AgentWords w = parse_agent_words("  Ready,\t50%,,MAINT ");
  EXPECT_EQ(w.state, ServerState::Maint);  // maint is stronger than ready
  EXPECT_EQ(w.weight_percent, 50u);
  EXPECT_EQ(w.message, "");
}

TEST(AgentWords, StrongestStateWins) {
  EXPECT_EQ(parse_agent_words("up maint").state, ServerState::Maint);
  EXPECT_EQ(parse_agent_words("maint up").state, ServerState::Maint);
  EXPECT_EQ(parse_agent_words("drain, down").state, ServerState::Down);
  EXPECT_EQ(parse_agent_words("down drain up").state, ServerState::Down);
  EXPECT_EQ(parse_agent_words("up drain").state, ServerState::Drain);
}

TEST(AgentWords, WeightOnlyAndZero) {
  AgentWords w = parse_agent_words("0%");
  EXPECT_FALSE(w.state.has_value());
  EXPECT_EQ(w.weight_percent, 0u);
  EXPECT_EQ(parse_agent_words("100%").weight_percent, 100u);
  EXPECT_EQ(parse_agent_words("10% 20%").weight_percent, 20u);  // the last one
}

TEST(AgentWords, MessageRunsToTheEndOfTheLine) {
  AgentWords w = parse_agent_words("down #disk full, replication lag 30s\nup 100%\n");
  EXPECT_EQ(w.state, ServerState::Down);
  EXPECT_EQ(w.message, "disk full, replication lag 30s");
  EXPECT_FALSE(w.weight_percent.has_value());  // the second line is never read
  EXPECT_EQ(parse_agent_words("up#no space before").message, "no space before");
  EXPECT_EQ(parse_agent_words("#").message, "");
}

TEST(AgentWords, GarbageIsIgnored) {
  AgentWords empty;
  EXPECT_EQ(parse_agent_words(""), empty);
  EXPECT_EQ(parse_agent_words("\n\n\n"), empty);
  EXPECT_EQ(parse_agent_words("hello world"), empty);
  EXPECT_EQ(parse_agent_words("upp downn 75 %75 -5% 101% 1000% 99999999999% 7.5% x%"), empty);
  EXPECT_EQ(parse_agent_words("maxconn:30"), empty);
  const char raw[] = "\x00\xff\xfe up \x01\x02 42%";
  std::string binary(raw, sizeof raw - 1);
  AgentWords b = parse_agent_words(binary);
  EXPECT_EQ(b.state, ServerState::Up);
  EXPECT_EQ(b.weight_percent, 42u);
  const char raw_msg[] = "down #\x01\x7f bell";
  AgentWords msg = parse_agent_words(std::string(raw_msg, sizeof raw_msg - 1));
  EXPECT_EQ(msg.state, ServerState::Down);
  EXPECT_EQ(msg.message, "bell");  // control bytes become spaces, then trimmed
}

TEST(AgentWords, OnlyTheFirst512BytesCount) {
  std::string line(600, ' ');
  line += "down";
  EXPECT_FALSE(parse_agent_words(line).state.has_value());
  std::string huge(1 << 20, 'x');
  EXPECT_EQ(parse_agent_words(huge), AgentWords{});
}

// ---- Galera ------------------------------------------------------------------------------

std::vector<std::pair<std::string, std::string>> synced_rows() {
  return {{"wsrep_local_state", "4"},         {"wsrep_local_state_comment", "Synced"},
          {"wsrep_cluster_status", "Primary"}, {"wsrep_ready", "ON"},
          {"wsrep_last_committed", "1234"},    {"wsrep_cluster_size", "3"},
          {"READ_ONLY", "OFF"},                {"WSREP_DESYNC", "OFF"}};
}

config::MysqlRequire galera_require() {
  config::MysqlRequire r;
  r.wsrep_local_state = 4;
  r.wsrep_cluster_status = "Primary";
  r.wsrep_ready = true;
  r.wsrep_desync = false;
  return r;
}

TEST(Galera, ViewFromRows) {
  GaleraView v = galera_view(synced_rows());
  EXPECT_EQ(v.local_state, 4);
  EXPECT_EQ(v.local_state_comment, "Synced");
  EXPECT_EQ(v.cluster_status, "Primary");
  EXPECT_EQ(v.ready, true);
  EXPECT_EQ(v.desync, false);
  EXPECT_EQ(v.last_committed, 1234u);
  EXPECT_EQ(v.cluster_size, 3u);
  EXPECT_EQ(v.read_only, false);
  EXPECT_TRUE(v.writable());
}

TEST(Galera, BadValuesStayUnset) {
  GaleraView v = galera_view({{"wsrep_local_state", "four"},
                              {"wsrep_ready", "maybe"},
                              {"wsrep_last_committed", "-1"},
                              {"wsrep_cluster_size", "18446744073709551616"},  // 2^64
                              {"some_other_status", "1"}});
  EXPECT_FALSE(v.local_state);
  EXPECT_FALSE(v.ready);
  EXPECT_FALSE(v.last_committed);
  EXPECT_FALSE(v.cluster_size);
}

TEST(Galera, SyncedPassesAndSaysWhatItSaw) {
  Verdict v = judge_galera(galera_view(synced_rows()), galera_require());
  EXPECT_TRUE(v.ok);
  EXPECT_EQ(v.reason, "Synced, Primary, 3 nodes, last committed 1234, read_only OFF");
}

TEST(Galera, DesyncedDonorFailsWithEveryUnmetCondition) {
  auto rows = synced_rows();
  rows[0].second = "2";
  rows[1].second = "Donor/Desynced";
  rows[7].second = "ON";
  Verdict v = judge_galera(galera_view(rows), galera_require());
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason, "wsrep_local_state 2 (Donor/Desynced), need 4; wsrep_desync is ON, need OFF");
  EXPECT_FALSE(galera_view(rows).writable());
}

TEST(Galera, StateNameWithoutComment) {
  config::MysqlRequire r;
  r.wsrep_local_state = 4;
  Verdict v = judge_galera(galera_view({{"wsrep_local_state", "1"}}), r);
  EXPECT_EQ(v.reason, "wsrep_local_state 1 (Joining), need 4");
}

TEST(Galera, NonPrimaryComparedIgnoringCase) {
  auto rows = synced_rows();
  rows[2].second = "non-Primary";
  rows[3].second = "OFF";
  Verdict v = judge_galera(galera_view(rows), galera_require());
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason, "wsrep_cluster_status non-Primary, need Primary; wsrep_ready is OFF, need ON");
  config::MysqlRequire want_non_primary;
  want_non_primary.wsrep_cluster_status = "Non-Primary";  // the config's spelling
  EXPECT_TRUE(judge_galera(galera_view(rows), want_non_primary).ok);
}

TEST(Galera, ReadOnly) {
  auto rows = synced_rows();
  rows[6].second = "ON";
  config::MysqlRequire r;
  r.read_only = false;
  Verdict v = judge_galera(galera_view(rows), r);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason, "read_only is ON, need OFF");
  EXPECT_FALSE(galera_view(rows).writable());
}

TEST(Galera, PlainMariadbWithoutWsrep) {
  std::vector<std::pair<std::string, std::string>> rows = {{"read_only", "OFF"}};
  // Nothing required: a plain server passes.
  Verdict plain = judge_galera(galera_view(rows), {});
  EXPECT_TRUE(plain.ok);
  EXPECT_EQ(plain.reason, "no wsrep, read_only OFF");
  EXPECT_FALSE(galera_view(rows).writable());  // Galera's notion needs wsrep
  // Galera required: it says what is missing.
  Verdict v = judge_galera(galera_view(rows), galera_require());
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason,
            "wsrep_local_state not reported (no wsrep?), need 4; wsrep_cluster_status not reported (no wsrep?), "
            "need Primary; wsrep_ready not reported (no wsrep?), need ON; wsrep_desync not reported (no wsrep?), "
            "need OFF");
}

TEST(Galera, UnsetRequireFieldsAreNotChecked) {
  auto rows = synced_rows();
  rows[0].second = "2";
  config::MysqlRequire only_primary;
  only_primary.wsrep_cluster_status = "Primary";
  EXPECT_TRUE(judge_galera(galera_view(rows), only_primary).ok);
}

TEST(Galera, WritableNeedsEveryFact) {
  GaleraView v = galera_view(synced_rows());
  ASSERT_TRUE(v.writable());
  GaleraView no_desync = v;
  no_desync.desync.reset();
  EXPECT_FALSE(no_desync.writable());
  GaleraView non_primary = v;
  non_primary.cluster_status = "non-Primary";
  EXPECT_FALSE(non_primary.writable());
  GaleraView joined = v;
  joined.local_state = 3;
  EXPECT_FALSE(joined.writable());
}

// ---- JSON, excerpts, quoting ---------------------------------------------------------------

TEST(JsonField, StringsWithoutQuotesOthersAsJsonText) {
  std::string body = R"({"version": {"status": "stable", "id": "v3.14", "n": 3, "ok": true, "none": null,
                         "list": [1, "two"], "obj": {"a": 1}}})";
  auto f = json_field(body, "/version/status");
  EXPECT_EQ(f.result, JsonField::Result::Found);
  EXPECT_EQ(f.text, "stable");
  EXPECT_EQ(f.json_text, "\"stable\"");
  EXPECT_EQ(json_field(body, "/version/n").text, "3");
  EXPECT_EQ(json_field(body, "/version/ok").text, "true");
  EXPECT_EQ(json_field(body, "/version/none").text, "null");
  EXPECT_EQ(json_field(body, "/version/list/1").text, "two");
  EXPECT_EQ(json_field(body, "/version/obj").text, "{\"a\":1}");
  EXPECT_EQ(json_field(body, "/version/missing").result, JsonField::Result::Missing);
  EXPECT_EQ(json_field(body, "/version/list/7").result, JsonField::Result::Missing);
  EXPECT_EQ(json_field(body, "/version/status/deeper").result, JsonField::Result::Missing);
}

TEST(JsonField, NotJson) {
  EXPECT_EQ(json_field("<html>", "/a").result, JsonField::Result::NotJson);
  EXPECT_EQ(json_field("", "/a").result, JsonField::Result::NotJson);
  EXPECT_EQ(json_field("{\"a\": 1", "/a").result, JsonField::Result::NotJson);
  std::string deep(10000, '[');  // nesting beyond the parser's limit: refused, not a crash
  EXPECT_EQ(json_field(deep, "/0").result, JsonField::Result::NotJson);
}

TEST(Excerpt, PrintableAndBounded) {
  EXPECT_EQ(body_excerpt("ok\r\n\tfine"), "ok   fine");
  EXPECT_EQ(body_excerpt(std::string("a\0b\xff", 4)), "a.b.");
  std::string big(10000, 'x');
  EXPECT_EQ(body_excerpt(big).size(), 256u);
  EXPECT_EQ(body_excerpt(""), "");
}

TEST(Quote, EscapesAndCuts) {
  EXPECT_EQ(quote("\"id\": \"v3"), R"("\"id\": \"v3")");
  EXPECT_EQ(quote("a\\b"), R"("a\\b")");
  EXPECT_EQ(quote(std::string("\x01", 1)), R"("\x01")");
  EXPECT_EQ(quote(std::string(100, 'y'), 5), "\"yyyyy\"...");
}

// ---- HTTP verdict ----------------------------------------------------------------------------

TEST(JudgeHttp, StatusFirst) {
  config::HttpCheck h;
  h.expect_body = "never";
  Verdict v = judge_http(h, "GET /v3", 503, "Service Unavailable", false);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason, "HTTP 503 from GET /v3");
  h.expect_body.reset();
  h.expect_status = {200, 300};
  Verdict ok = judge_http(h, "GET /v3", 300, "", false);
  EXPECT_TRUE(ok.ok);
  EXPECT_EQ(ok.reason, "HTTP 300 from GET /v3");
}

TEST(JudgeHttp, BodySubstring) {
  config::HttpCheck h;
  h.expect_body = "\"id\": \"v3";
  EXPECT_TRUE(judge_http(h, "GET /v3", 200, R"({"version": {"id": "v3.14"}})", false).ok);
  Verdict v = judge_http(h, "GET /v3", 200, R"({"version": {"id": "v2.0"}})", false);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason, R"(body lacks "\"id\": \"v3")");
}

TEST(JudgeHttp, Regex) {
  config::HttpCheck h;
  h.expect_body_regex = "\"status\":\\s*\"(ok|stable)\"";
  EXPECT_TRUE(judge_http(h, "GET /", 200, "{\"status\": \"stable\"}", false).ok);
  Verdict v = judge_http(h, "GET /", 200, "{\"status\": \"broken\"}", false);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason, "body does not match /\"status\":\\s*\"(ok|stable)\"/");
  // ECMAScript meaning: ^ and $ are the ends of the body, '.' stops at line breaks.
  config::HttpCheck anchored;
  anchored.expect_body_regex = "^ok$";
  EXPECT_FALSE(judge_http(anchored, "GET /", 200, "not\nok\nreally", false).ok);
  EXPECT_TRUE(judge_http(anchored, "GET /", 200, "ok", false).ok);
  config::HttpCheck dot;
  dot.expect_body_regex = "a.b";
  EXPECT_FALSE(judge_http(dot, "GET /", 200, "a\nb", false).ok);
}

TEST(JudgeHttp, PathologicalRegexOnHostileBodyFailsInsteadOfCrashing) {
  // std::regex overflows the stack on these (see regex_found()); here they either match or
  // fail with a reason, on the whole 64 KiB.
  std::string body(kMaxBodyBytes, 'a');
  for (const char* re : {"(a|b)*c", ".*c", "(a*)*c", "(a|aa)*c", "^(([a-z])+.)+[A-Z]([a-z])+$"}) {
    config::HttpCheck h;
    h.expect_body_regex = re;
    Verdict v = judge_http(h, "GET /", 200, body, false);
    EXPECT_FALSE(v.ok) << re;
    EXPECT_FALSE(v.reason.empty()) << re;
  }
}

TEST(JudgeHttp, Json) {
  config::HttpCheck h;
  h.expect_json = config::JsonExpect{"/version/status", "stable"};
  EXPECT_TRUE(judge_http(h, "GET /", 200, R"({"version": {"status": "stable"}})", false).ok);
  Verdict v = judge_http(h, "GET /", 200, R"({"version": {"status": "deprecated"}})", false);
  EXPECT_EQ(v.reason, R"(JSON /version/status is "deprecated", want "stable")");
  Verdict missing = judge_http(h, "GET /", 200, R"({"version": {}})", false);
  EXPECT_EQ(missing.reason, R"(JSON /version/status is missing, want "stable")");
  Verdict html = judge_http(h, "GET /", 200, "<html>", false);
  EXPECT_FALSE(html.ok);
  EXPECT_EQ(html.reason.rfind("body is not JSON (", 0), 0u) << html.reason;
  config::HttpCheck n;
  n.expect_json = config::JsonExpect{"/n", "3"};
  EXPECT_TRUE(judge_http(n, "GET /", 200, R"({"n": 3})", false).ok);
  EXPECT_TRUE(judge_http(n, "GET /", 200, R"({"n": "3"})", false).ok);  // compared as text
  EXPECT_EQ(judge_http(n, "GET /", 200, R"({"n": 4})", false).reason, R"(JSON /n is 4, want "3")");
  EXPECT_TRUE(judge_http(n, "GET /", 200, R"({"n": 3.0})", false).ok);  // the same number
  config::HttpCheck d;
  d.expect_json = config::JsonExpect{"/ratio", "1.5"};
  EXPECT_TRUE(judge_http(d, "GET /", 200, R"({"ratio": 1.5})", false).ok);
  EXPECT_TRUE(judge_http(d, "GET /", 200, R"({"ratio": 15e-1})", false).ok);
  EXPECT_EQ(judge_http(d, "GET /", 200, R"({"ratio": 2.25})", false).reason, R"(JSON /ratio is 2.25, want "1.5")");
  config::HttpCheck b;
  b.expect_json = config::JsonExpect{"/up", "true"};
  EXPECT_TRUE(judge_http(b, "GET /", 200, R"({"up": true})", false).ok);
  EXPECT_FALSE(judge_http(b, "GET /", 200, R"({"up": "yes"})", false).ok);
}

TEST(JudgeHttp, TruncatedBody) {
  std::string prefix(kMaxBodyBytes, 'x');
  config::HttpCheck status_only;
  EXPECT_TRUE(judge_http(status_only, "GET /big", 200, prefix, true).ok);
  config::HttpCheck body;
  body.expect_body = "xxx";
  EXPECT_TRUE(judge_http(body, "GET /big", 200, prefix, true).ok);  // found in what was read
  body.expect_body = "the end";
  Verdict v = judge_http(body, "GET /big", 200, prefix, true);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason, "body larger than 64 KiB: its first 64 KiB lack \"the end\"");
  config::HttpCheck json;
  json.expect_json = config::JsonExpect{"/a", "b"};
  EXPECT_EQ(judge_http(json, "GET /big", 200, prefix, true).reason, "body larger than 64 KiB: cannot check JSON /a");
}

// ---- exec verdict ----------------------------------------------------------------------------

TEST(JudgeExec, ExitCodes) {
  std::optional<AgentWords> agent;
  Verdict ok = judge_exec(0, std::nullopt, "all fine\nmore\n", false, agent);
  EXPECT_TRUE(ok.ok);
  EXPECT_EQ(ok.reason, "exit 0: all fine");
  EXPECT_FALSE(agent.has_value());
  Verdict bad = judge_exec(3, std::nullopt, "\n  replication broken \r\nmore", false, agent);
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.reason, "exit 3: replication broken");
  EXPECT_EQ(judge_exec(1, std::nullopt, "", false, agent).reason, "exit 1");
  EXPECT_EQ(judge_exec(std::nullopt, 9, "", false, agent).reason, "killed by signal 9");
}

TEST(JudgeExec, AgentDownFailsEvenWithExitZero) {
  std::optional<AgentWords> agent;
  Verdict v = judge_exec(0, std::nullopt, "down #disk full\n", true, agent);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason, "agent says down: disk full");
  ASSERT_TRUE(agent);
  EXPECT_EQ(agent->state, ServerState::Down);
  Verdict drain = judge_exec(0, std::nullopt, "drain 0%\n", true, agent);
  EXPECT_TRUE(drain.ok);  // drain is the monitor's business, not a failure
  EXPECT_EQ(agent->state, ServerState::Drain);
  EXPECT_EQ(agent->weight_percent, 0u);
}

TEST(JudgeExec, FirstLineIsBoundedAndPrintable) {
  std::string long_line(5000, 'z');
  std::string line = first_line(long_line);
  EXPECT_EQ(line.size(), 203u);  // 200 + "..."
  EXPECT_EQ(first_line(std::string("a\x01" "b", 3)), "a.b");
  EXPECT_EQ(first_line(""), "");
}

}  // namespace
}  // namespace hafront::health
