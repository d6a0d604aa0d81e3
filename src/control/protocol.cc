#include "control/protocol.h"

namespace hafront::control {
namespace {

boost::json::parse_options parse_limits() {
  boost::json::parse_options opt;
  opt.max_depth = 16;
  return opt;
}

}  // namespace

ParsedRequest parse_request(std::string_view line) {
  if (line.size() > kMaxRequestBytes) {
    return {std::nullopt, "request is larger than " + std::to_string(kMaxRequestBytes) + " bytes"};
  }
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(line, ec, {}, parse_limits());
  if (ec) return {std::nullopt, "request is not valid JSON: " + ec.message()};
  if (!v.is_object()) return {std::nullopt, "request must be a JSON object like {\"command\": \"status\"}"};
  const auto& obj = v.get_object();
  for (const auto& kv : obj) {
    if (kv.key() != "command" && kv.key() != "args") {
      return {std::nullopt, "unknown field '" + std::string(kv.key()) + "' in request (expected command, args)"};
    }
  }
  const auto* cmd = obj.if_contains("command");
  if (!cmd || !cmd->is_string() || cmd->get_string().empty()) {
    return {std::nullopt, "request needs a \"command\" text field"};
  }
  Request r;
  r.command = std::string(cmd->get_string());
  if (const auto* args = obj.if_contains("args")) {
    if (!args->is_object()) return {std::nullopt, "\"args\" must be a JSON object"};
    r.args = args->get_object();
  }
  return {std::move(r), {}};
}

std::string encode_reply(const Reply& reply) {
  boost::json::object o;
  o["ok"] = reply.ok;
  if (reply.ok) {
    o["result"] = reply.result;
  } else {
    o["error"] = reply.error;
    if (!reply.details.is_null()) o["details"] = reply.details;
  }
  return boost::json::serialize(o) + "\n";
}

std::string encode_request(std::string_view command, const boost::json::object& args) {
  boost::json::object o;
  o["command"] = command;
  if (!args.empty()) o["args"] = args;
  return boost::json::serialize(o) + "\n";
}

Reply decode_reply(std::string_view line) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(line, ec);
  if (ec || !v.is_object()) return Reply::failure("the daemon sent a malformed reply");
  const auto& o = v.get_object();
  const auto* ok = o.if_contains("ok");
  if (!ok || !ok->is_bool()) return Reply::failure("the daemon sent a reply without \"ok\"");
  if (ok->get_bool()) {
    const auto* r = o.if_contains("result");
    return Reply::success(r ? *r : boost::json::value(nullptr));
  }
  const auto* err = o.if_contains("error");
  const auto* details = o.if_contains("details");
  return Reply::failure(err && err->is_string() ? std::string(err->get_string()) : "unknown error",
                        details ? *details : boost::json::value(nullptr));
}

}  // namespace hafront::control
