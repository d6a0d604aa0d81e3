// The admin protocol between hafrontctl and hafrontd, over a unix stream socket.
//
// One request per line, one response per line, both JSON objects:
//   request:  {"command": "status", "args": {...}}          args optional
//   response: {"ok": true, "result": ...}
//             {"ok": false, "error": "what went wrong", "details": ...}   details optional
// A request line is at most kMaxRequestBytes; longer ones get an error and the connection
// closes. Parsing is pure so it can be unit-tested and fuzzed.
#pragma once

#include <boost/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace hafront::control {

inline constexpr size_t kMaxRequestBytes = 64 * 1024;
inline constexpr size_t kMaxResponseBytes = 16 * 1024 * 1024;

struct Request {
  std::string command;
  boost::json::object args;
};

struct ParsedRequest {
  std::optional<Request> request;
  std::string error;  // set when request is empty
};

// Parses one line (without its newline).
ParsedRequest parse_request(std::string_view line);

// A handler's answer.
struct Reply {
  bool ok = true;
  boost::json::value result;  // when ok
  std::string error;          // when !ok
  boost::json::value details; // optional, when !ok

  static Reply success(boost::json::value v) { return Reply{true, std::move(v), {}, nullptr}; }
  static Reply failure(std::string message, boost::json::value details = nullptr) {
    return Reply{false, nullptr, std::move(message), std::move(details)};
  }
};

// Serialised response line, newline included.
std::string encode_reply(const Reply& reply);
// Serialised request line, newline included.
std::string encode_request(std::string_view command, const boost::json::object& args = {});

// Parses a response line from the daemon; a malformed one becomes a failure Reply.
Reply decode_reply(std::string_view line);

}  // namespace hafront::control
