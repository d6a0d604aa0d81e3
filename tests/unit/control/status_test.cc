#include "control/status.h"

#include <gtest/gtest.h>

namespace hafront::control {
namespace {

Status sample() {
  Status s;
  s.node = "ctrl-0";
  s.version = "0.1.0";
  s.cluster.name = "overcloud";
  s.cluster.mode = "standalone";
  s.cluster.quorate = true;
  s.cluster.members = {{"ctrl-0", 1}};
  s.vips.push_back({"internal", "192.0.2.100/24", "eth0", "address", std::nullopt, "released", "why",
                    "net.ipv4.conf.eth0.arp_ignore is 0", std::nullopt});
  s.vips.push_back({"public", "198.51.100.50/24", "eth1", "lease", "ctrl-0", "held", "", "", 412});
  s.services.push_back({"keystone", "http", "roundrobin", {"internal:5000"},
                        {{"ctrl-0", "192.0.2.10:5000", "unknown", "not checked"}}});
  s.config.path = "/etc/hafront/hafront.yaml";
  s.config.sha256 = std::string(64, 'a');
  return s;
}

TEST(Status, JsonHasTheDocumentedShape) {
  auto v = to_json(sample());
  EXPECT_EQ(v.at("node").as_string(), "ctrl-0");
  EXPECT_EQ(v.at("cluster").at("mode").as_string(), "standalone");
  EXPECT_TRUE(v.at("cluster").at("quorate").as_bool());
  EXPECT_EQ(v.at("cluster").at("members").at(0).at("name").as_string(), "ctrl-0");
  const auto& vip = v.at("vips").at(0);
  for (auto key : {"name", "address", "holder", "state"}) EXPECT_TRUE(vip.as_object().contains(key)) << key;
  EXPECT_TRUE(vip.at("holder").is_null());
  const auto& srv = v.at("services").at(0).at("servers").at(0);
  for (auto key : {"name", "address", "state", "reason"}) EXPECT_TRUE(srv.as_object().contains(key)) << key;
}

TEST(Status, LeaseDriverAndExpiryAreShown) {
  auto v = to_json(sample());
  EXPECT_EQ(v.at("vips").at(1).at("driver").as_string(), "lease");
  EXPECT_EQ(v.at("vips").at(1).at("lease_ms_left").as_int64(), 412);
  EXPECT_TRUE(v.at("vips").at(0).at("lease_ms_left").is_null());
  std::string t = render_text(v);
  EXPECT_NE(t.find("driver lease (lease 412 ms left)"), std::string::npos) << t;
  EXPECT_NE(t.find("[net.ipv4.conf.eth0.arp_ignore is 0]"), std::string::npos) << t;
  auto expired = sample();
  expired.vips[1].lease_ms_left = 0;
  EXPECT_NE(render_text(to_json(expired)).find("(lease expired)"), std::string::npos);
}

TEST(Status, TextShowsWhatMatters) {
  std::string t = render_text(to_json(sample()));
  EXPECT_NE(t.find("quorate"), std::string::npos);
  EXPECT_NE(t.find("internal"), std::string::npos);
  EXPECT_NE(t.find("192.0.2.10:5000"), std::string::npos);
  EXPECT_NE(t.find("not checked"), std::string::npos);
}

TEST(Status, TextShowsAFailedReload) {
  Status s = sample();
  s.config.last_reload_ok = false;
  s.config.last_reload_at = "2026-01-01T00:00:00.000Z";
  s.config.last_reload_errors = {"f.yaml:3:5: bad"};
  std::string t = render_text(to_json(s));
  EXPECT_NE(t.find("FAILED"), std::string::npos);
  EXPECT_NE(t.find("f.yaml:3:5: bad"), std::string::npos);
}

TEST(Status, ClusterNodesShowTheirState) {
  Status s = sample();
  s.cluster.mode = "corosync";
  s.cluster.coordinator = "ctrl-0";
  s.cluster.nodes = {{"ctrl-0", 1, true, true, false, true, false, ""},
                     {"ctrl-1", 2, false, true, false, true, false, "unclean"},
                     {"ctrl-2", 3, true, true, false, false, false, ""}};
  s.cluster.fence = {"ctrl-1"};
  auto v = to_json(s);
  EXPECT_EQ(v.at("cluster").at("nodes").at(1).at("departure").as_string(), "unclean");
  EXPECT_EQ(v.at("cluster").at("coordinator").as_string(), "ctrl-0");
  std::string t = render_text(v);
  EXPECT_NE(t.find("ctrl-0      member, coordinator"), std::string::npos) << t;
  EXPECT_NE(t.find("ctrl-1      not a member, left uncleanly"), std::string::npos) << t;
  EXPECT_NE(t.find("ctrl-2      member, CONFIG MISMATCH"), std::string::npos) << t;
  EXPECT_NE(t.find("to fence: ctrl-1"), std::string::npos) << t;
}

TEST(Status, FencingShowsDevicesLastFenceAndHistory) {
  Status s = sample();
  s.cluster.fence_devices = {{"ipmi-1", "fence_ipmilan", "ok", "", 1, 120, {"ctrl-1"}},
                             {"pdu", "fence_apc_snmp", "failed", "timeout after 20000 ms", 1, 20000, {"ctrl-1"}}};
  cluster::FenceEvent off;
  off.target = "ctrl-1";
  off.executor = "ctrl-0";
  off.result = "off";
  off.level = 2;
  off.devices = {"pdu-a:3", "pdu-b:3"};
  off.started_ms = 1'795'322'150'000;
  off.finished_ms = 1'795'322'150'434;
  off.delay_ms = 2000;
  cluster::FenceEvent failed = off;
  failed.result = "failed";
  failed.rounds = 2;
  failed.reason = "every level failed";
  s.cluster.last_fence = off;
  std::string t = render_text(to_json(s));
  EXPECT_NE(t.find("fence devices: ipmi-1=ok pdu=failed (timeout after 20000 ms)"), std::string::npos) << t;
  EXPECT_NE(t.find("last fence: ctrl-1 off by ctrl-0"), std::string::npos) << t;

  boost::json::array h{to_json(off), to_json(failed)};
  std::string history = render_fence_history(boost::json::object{{"history", h}});
  EXPECT_NE(history.find("Z  ctrl-1    off       by ctrl-0    level 2 (pdu-a:3, pdu-b:3) in 434 ms after a 2000 ms delay"),
            std::string::npos)
      << history;
  EXPECT_NE(history.find("failed    by ctrl-0    after 2 attempt(s): every level failed"), std::string::npos) << history;
  EXPECT_EQ(render_fence_history(boost::json::object{{"history", boost::json::array{}}}),
            "no fencing recorded since this daemon started\n");
  EXPECT_NO_THROW(render_fence_history(boost::json::parse(R"({"history":[1,"x",{"result":"off","devices":7}]})")));
}

TEST(Status, DataPlaneCountersAndUnstartedServices) {
  Status s = sample();  // keystone: http, not started
  s.services[0].note = "http mode not implemented yet";
  ServiceStatus db{"galera", "tcp", "single-writer", {"internal:3306"}, {}, "running"};
  db.traffic = ServiceTraffic{12, 2, 1, 3 * 1024 * 1024, 512, {{"connect_refused", 3}}};
  ServerStatus srv{"ctrl-0", "192.0.2.10:3306", "unknown", "no check configured"};
  ServerTraffic t{12, 2, 3 * 1024 * 1024, 512, {{"connect_refused", 3}}, {{100, 10}, {250, 2}, {0, 0}}, 100, 250};
  srv.traffic = t;
  srv.passive = {{"connect_refused", 3}};
  db.servers.push_back(srv);
  s.services.push_back(db);
  s.data_plane = {true, "io_uring", "io_uring, provided buffer ring of 256 x 16 KiB", 2, 0, 4};
  auto v = to_json(s);
  EXPECT_EQ(v.at("services").at(0).at("state").as_string(), "not started");
  EXPECT_TRUE(v.at("services").at(0).at("counters").is_null());
  const auto& c = v.at("services").at(1).at("counters");
  EXPECT_EQ(c.at("connections").as_uint64(), 12u);
  EXPECT_EQ(c.at("errors").at("connect_refused").as_uint64(), 3u);
  const auto& sc = v.at("services").at(1).at("servers").at(0);
  EXPECT_EQ(sc.at("counters").at("connect_time_us").at("le").at(2), boost::json::value(nullptr));
  EXPECT_EQ(sc.at("counters").at("connect_time_us").at("p99").as_uint64(), 250u);
  EXPECT_EQ(sc.at("passive").at("connect_refused").as_uint64(), 3u);
  EXPECT_EQ(v.at("data_plane").at("backend").as_string(), "io_uring");
  std::string text = render_text(v);
  EXPECT_NE(text.find("keystone (http, roundrobin) on internal:5000 — NOT STARTED: http mode not implemented yet"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("data plane: 2 worker(s) on io_uring, provided buffer ring"), std::string::npos) << text;
  EXPECT_NE(text.find("4 access log lines dropped"), std::string::npos) << text;
  EXPECT_NE(text.find("12 connections, 2 active, 1 queued; 3.0 MiB from clients, 512 B to clients; errors: "
                      "connect_refused 3"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("connect p50 <= 100us, p99 <= 250us; errors: connect_refused 3; passive: connect_refused 3"),
            std::string::npos)
      << text;
}

TEST(Status, HealthRootCauseWriterEjectionAndAlerts) {
  Status s = sample();
  s.vips[0].servable = false;
  s.vips[0].servable_reason = "keystone has no usable server (root cause: galera: down — x)";
  ServiceStatus& keystone = s.services[0];
  keystone.health = "down";
  keystone.health_reason = "no usable server: ctrl-0 down (HTTP 503 from GET /v3)";
  keystone.root_cause = "galera: down — no eligible writer: db-1 wsrep_local_state 2 (Donor/Desynced)";
  ServerStatus& srv = keystone.servers[0];
  srv.state = "down";
  srv.reason = "HTTP 503 from GET /v3";
  srv.since = "2026-12-08T10:00:00.000Z";
  srv.weight = 1;
  srv.last_ok = false;
  srv.last_check = "2026-12-08T10:00:01.000Z";
  srv.last_reason = "HTTP 503 from GET /v3";
  srv.evidence = {{"http_status", "503"}, {"body_excerpt", "db gone"}, {"duration_ms", "3"}};
  srv.ejection = EjectionStatus{"ejected: connect refused seen by the proxy (1 in a row)", "2026-12-08T10:00:02.000Z",
                                2000, 2};
  ServiceStatus galera{"galera", "tcp", "single-writer", {"internal:3306"},
                       {{"db-1", "192.0.2.10:3306", "up", "Synced"}}};
  galera.health = "down";
  galera.root_cause = "galera: down — no eligible writer: db-1 wsrep_local_state 2 (Donor/Desynced)";
  galera.health_reason = "no eligible writer: db-1 wsrep_local_state 2 (Donor/Desynced)";
  galera.affected = {"keystone"};
  galera.writer_reason = "no eligible writer: db-1 wsrep_local_state 2 (Donor/Desynced)";
  galera.servers[0].role = "standby";
  galera.servers[0].evidence = {{"wsrep_local_state", "2 (Donor/Desynced)"}};
  galera.servers[0].last_check = "2026-12-08T10:00:01.000Z";
  galera.servers[0].last_ok = true;
  s.services.push_back(galera);  // `keystone` and `srv` refer into s.services: not used below
  s.active_alerts.push_back({"galera", "critical", "galera down", galera.root_cause, {"keystone"},
                             "2026-12-08T10:00:00.000Z"});
  s.alert_sinks.push_back({"webhook http://127.0.0.1:9000/hook", 3, 1, 0, 2, "HTTP 500"});

  auto v = to_json(s);
  const auto& h = v.at("services").at(0).at("health");
  EXPECT_EQ(h.at("state"), "down");
  EXPECT_EQ(h.at("root_cause").as_string(),
            "galera: down — no eligible writer: db-1 wsrep_local_state 2 (Donor/Desynced)");
  const auto& sh = v.at("services").at(0).at("servers").at(0).at("health");
  EXPECT_EQ(sh.at("since"), "2026-12-08T10:00:00.000Z");
  EXPECT_EQ(sh.at("last_check").at("evidence").at("http_status"), "503");
  EXPECT_EQ(sh.at("ejection").at("backoff_ms"), 2000);
  EXPECT_TRUE(v.at("services").at(1).at("health").at("writer").is_null());
  EXPECT_EQ(v.at("services").at(1).at("health").at("affected").at(0), "keystone");
  EXPECT_EQ(v.at("vips").at(0).at("servable"), false);
  EXPECT_EQ(v.at("active_alerts").at(0).at("id"), "galera");
  EXPECT_EQ(v.at("alert_sinks").at(0).at("rate_limited"), 2);

  std::string t = render_text(v);
  for (const char* want :
       {"not servable: keystone has no usable server", "health: DOWN — root cause: galera: down — no eligible writer",
        "(since 2026-12-08T10:00:00.000Z) [http_status 503]", "ejected 2 time(s) recently, back-off 2000 ms",
        "health: DOWN — no eligible writer: db-1", "; affects keystone", "writer: NONE — no eligible writer",
        "[wsrep_local_state 2 (Donor/Desynced)]", "active alerts (1)", "CRITICAL galera down",
        "affected: keystone", "alert sink webhook http://127.0.0.1:9000/hook: 3 sent, 1 failed, 2 held by the rate limit",
        "(last error: HTTP 500)"}) {
    EXPECT_NE(t.find(want), std::string::npos) << want << "\n" << t;
  }
  EXPECT_EQ(t.find("db gone"), std::string::npos) << "the body excerpt stays in the JSON";
}

TEST(Status, RenderingMalformedJsonDoesNotThrow) {
  EXPECT_NO_THROW(render_text(boost::json::value(nullptr)));
  EXPECT_NO_THROW(render_text(boost::json::parse(R"({"cluster":5,"vips":{"a":1},"services":[1,"x",{"servers":7}]})")));
  EXPECT_NO_THROW(render_text(boost::json::parse(
      R"({"data_plane":{"running":true,"workers":-1},"services":[{"counters":{"connections":"x","errors":[1]},)"
      R"("servers":[{"counters":{"connect_time_us":{"p50":-5}},"passive":7}]}]})")));
}

}  // namespace
}  // namespace hafront::control
