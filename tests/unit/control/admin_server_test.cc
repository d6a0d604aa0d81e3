// The admin server on a real io_context (in a thread) and a real unix socket in a
// temporary folder, driven by the real client and by raw sockets for bad input.
#include "control/admin_server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "control/admin_client.h"

namespace hafront::control {
namespace {

namespace fs = std::filesystem;

class AdminServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hafront-admin-XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/run/admin.sock";
    server_ = std::make_unique<AdminServer>(io_, path_);
    server_->add_command("echo", [](const boost::json::object& args) { return Reply::success(args); });
    server_->add_command("boom", [](const boost::json::object&) -> Reply { throw std::runtime_error("kaput"); });
    auto err = server_->listen();
    ASSERT_FALSE(err) << *err;
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    boost::asio::post(io_, [this] { server_->close(); });
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
    server_.reset();
    fs::remove_all(dir_);
  }

  // Sends raw bytes and returns everything the server sent back until it closed.
  std::string raw(const std::string& bytes, bool half_close = true) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path_.copy(addr.sun_path, sizeof addr.sun_path - 1);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    timeval tv{20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) break;  // the server may close early on huge input
      off += static_cast<size_t>(n);
    }
    if (half_close) ::shutdown(fd, SHUT_WR);
    std::string out;
    char buf[4096];
    for (;;) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return out;
  }

  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{io_.get_executor()};
  std::string dir_, path_;
  std::unique_ptr<AdminServer> server_;
  std::thread thread_;
};

TEST_F(AdminServerTest, SocketIsPrivate) {
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((dir_ + "/run").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(AdminServerTest, AnswersCommands) {
  auto r = call(path_, "echo", boost::json::object{{"x", 1}});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.result.at("x").as_int64(), 1);
}

TEST_F(AdminServerTest, UnknownCommandListsKnownOnes) {
  auto r = call(path_, "nope");
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("known: boom, echo"), std::string::npos) << r.error;
}

TEST_F(AdminServerTest, HandlerExceptionBecomesAnErrorReply) {
  auto r = call(path_, "boom");
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("kaput"), std::string::npos);
  EXPECT_TRUE(call(path_, "echo").ok);  // still serving
}

TEST_F(AdminServerTest, NotJsonGetsAClearError) {
  std::string out = raw("hello there\n");
  EXPECT_NE(out.find("not valid JSON"), std::string::npos) << out;
}

TEST_F(AdminServerTest, SeveralRequestsOnOneConnection) {
  std::string out = raw("{\"command\":\"echo\"}\n{\"command\":\"echo\"}\n");
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 2);
}

TEST_F(AdminServerTest, HugeRequestIsRefusedAndServerStaysUp) {
  std::string out = raw(std::string(1 << 20, 'x'), false);
  EXPECT_NE(out.find("larger than 65536 bytes"), std::string::npos) << out.substr(0, 200);
  EXPECT_TRUE(call(path_, "echo").ok);
}

TEST_F(AdminServerTest, BinaryGarbageIsRefused) {
  std::string bin;
  for (int i = 0; i < 256; ++i) bin += static_cast<char>(i);
  std::string out = raw(bin);
  EXPECT_NE(out.find("\"ok\":false"), std::string::npos) << out;
  EXPECT_TRUE(call(path_, "echo").ok);
}

TEST_F(AdminServerTest, SecondServerOnTheSamePathRefusesToStart) {
  AdminServer other(io_, path_);
  auto err = other.listen();
  ASSERT_TRUE(err);
  EXPECT_NE(err->find("another hafrontd"), std::string::npos);
}

TEST_F(AdminServerTest, ClientReportsAMissingDaemon) {
  auto r = call(dir_ + "/nothing.sock", "status");
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("cannot reach hafrontd"), std::string::npos);
}

TEST(AdminServerStale, ReplacesAStaleSocketButNotAFile) {
  char tmpl[] = "/tmp/hafront-admin-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  boost::asio::io_context io;
  {
    // A socket file nobody listens on: what a crashed daemon leaves.
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string p = dir + "/stale.sock";
    p.copy(addr.sun_path, sizeof addr.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::close(fd);
    AdminServer s(io, p);
    EXPECT_FALSE(s.listen());
  }
  {
    std::string p = dir + "/plain";
    { std::ofstream(p) << "x"; }
    AdminServer s(io, p);
    auto err = s.listen();
    ASSERT_TRUE(err);
    EXPECT_NE(err->find("not a socket"), std::string::npos);
    EXPECT_TRUE(fs::exists(p));
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace hafront::control

namespace hafront::control {
namespace {

TEST(AdminClient, TimesOutOnADaemonThatNeverAnswers) {
  char tmpl[] = "/tmp/hafront-admin-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string path = dir + "/mute.sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 4), 0);  // connections complete in the backlog; nobody answers
  auto t0 = std::chrono::steady_clock::now();
  Reply r = call(path, "status", {}, std::chrono::milliseconds(200));
  auto elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "timed out waiting for hafrontd's reply");
  EXPECT_LT(elapsed, std::chrono::seconds(5));
  ::close(fd);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hafront::control
