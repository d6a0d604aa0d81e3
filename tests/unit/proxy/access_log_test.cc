// Access log lines in HAProxy's TCP log order, and the writer thread.
#include "proxy/access_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "config/units.h"
#include "temp_dir.h"

namespace hafront::proxy {
namespace {

using hafront::test_support::TempDir;

std::string line(const AccessLogEntry& e) {
  std::array<char, kAccessLineMax> out;
  size_t n = format_access_line(e, out);
  return {out.data(), n};
}

AccessLogEntry entry() {
  AccessLogEntry e;
  e.client = *config::parse_endpoint("192.0.2.7:40312");
  e.accepted_unix_ms = 1741342867311;  // 2025-03-07T10:21:07.311Z
  e.service = "db";
  e.server = "db-1";
  e.queue_ms = 0;
  e.connect_ms = 1;
  e.total_ms = 5007;
  e.bytes_to_client = 212;
  e.bytes_from_client = 84;
  return e;
}

TEST(ProxyAccessLog, LineInHaproxyOrder) {
  EXPECT_EQ(line(entry()), "192.0.2.7:40312 [07/Mar/2025:10:21:07.311] db db/db-1 0/1/5007 212 84 -- 0\n");
}

TEST(ProxyAccessLog, NoServerIpv6AndAnEarlyEnd) {
  AccessLogEntry e = entry();
  e.client = *config::parse_endpoint("[2001:db8::5]:1");
  e.server = "";
  e.queue_ms = -1;
  e.connect_ms = -1;
  e.termination[0] = 'S';
  e.termination[1] = 'C';
  e.retries = 3;
  e.accepted_unix_ms = 951782400000;  // 2000-02-29T00:00:00.000Z, a leap day
  EXPECT_EQ(line(e), "[2001:db8::5]:1 [29/Feb/2000:00:00:00.000] db db/<NOSRV> -1/-1/5007 212 84 SC 3\n");
}

TEST(ProxyAccessLog, OverlongLineIsCutButEndsTheLine) {
  AccessLogEntry e = entry();
  std::string name(400, 'x');
  e.service = name;
  std::string l = line(e);
  EXPECT_EQ(l.size(), kAccessLineMax);
  EXPECT_EQ(l.back(), '\n');
}

TEST(ProxyAccessLog, WriterAppendsToTheFileAndReopensOnRequest) {
  TempDir tmp("hafront-log-");
  const std::filesystem::path& dir = tmp.path;
  auto path = (dir / "access.log").string();
  AccessLog log;
  EXPECT_FALSE(log.enabled());
  ASSERT_FALSE(log.open(path).has_value());
  EXPECT_TRUE(log.enabled());
  std::string a = line(entry());
  log.post(a);
  // Rotation: the file is moved away, and open() again starts a new one.
  auto read = [](const std::string& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (read(path) != a && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(read(path), a);
  std::filesystem::rename(path, path + ".1");
  ASSERT_FALSE(log.open(path).has_value());
  log.post(a);
  log.stop();  // writes what is queued first
  EXPECT_EQ(read(path), a);
  EXPECT_EQ(read(path + ".1"), a);
  EXPECT_TRUE(log.open((dir / "missing" / "x.log").string()).has_value());
}

}  // namespace
}  // namespace hafront::proxy
