// Runs one health probe from outside the daemon, for the loopback tests
// (tests/loopback/probe_*.py): loads a config file with the real loader, runs the named
// check once against one address on an io_context, prints the Observation as one JSON
// object on stdout and exits 0 when the check passed, 1 when it failed, 2 for bad usage or
// an invalid config.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include <iostream>
#include <optional>

#include "config/config.h"
#include "config/units.h"
#include "health/probe.h"

namespace {

namespace json = boost::json;
using hafront::health::Observation;

json::object to_json(const Observation& o) {
  json::object j;
  j["ok"] = o.ok;
  j["run"] = hafront::health::to_string(o.run);
  j["reason"] = o.reason;
  j["duration_ms"] = o.duration.count();
  if (o.http_status) j["http_status"] = *o.http_status;
  if (!o.body_excerpt.empty()) j["body_excerpt"] = o.body_excerpt;
  if (o.exit_code) j["exit_code"] = *o.exit_code;
  if (o.galera) {
    const auto& g = *o.galera;
    json::object v;
    if (g.local_state) v["wsrep_local_state"] = *g.local_state;
    if (g.local_state_comment) v["wsrep_local_state_comment"] = *g.local_state_comment;
    if (g.cluster_status) v["wsrep_cluster_status"] = *g.cluster_status;
    if (g.ready) v["wsrep_ready"] = *g.ready;
    if (g.desync) v["wsrep_desync"] = *g.desync;
    if (g.last_committed) v["wsrep_last_committed"] = *g.last_committed;
    if (g.cluster_size) v["wsrep_cluster_size"] = *g.cluster_size;
    if (g.read_only) v["read_only"] = *g.read_only;
    v["writable"] = g.writable();
    j["galera"] = std::move(v);
  }
  if (o.agent) {
    json::object a;
    if (o.agent->state) a["state"] = hafront::health::to_string(*o.agent->state);
    if (o.agent->weight_percent) a["weight_percent"] = *o.agent->weight_percent;
    a["message"] = o.agent->message;
    j["agent"] = std::move(a);
  }
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"run one hafront health check once"};
  std::string config_path, check_name, address_text, service = "test", server = "test";
  app.add_option("-c,--config", config_path, "config file")->required();
  app.add_option("--check", check_name, "check name")->required();
  app.add_option("--address", address_text, "server address, IP:PORT")->required();
  app.add_option("--service", service, "service name (for the exec environment)");
  app.add_option("--server", server, "server name (for the exec environment)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);  // as the daemon does

  auto loaded = hafront::config::load_file(config_path);
  for (const auto& d : loaded.diagnostics) std::cerr << d.format() << "\n";
  if (!loaded.ok()) return 2;
  const hafront::config::Check* check = loaded.config->find_check(check_name);
  if (!check) {
    std::cerr << "no check named '" << check_name << "' in " << config_path << "\n";
    return 2;
  }
  auto address = hafront::config::parse_endpoint(address_text);
  if (!address) {
    std::cerr << "bad --address '" << address_text << "': expected IP:PORT\n";
    return 2;
  }

  boost::asio::io_context io;
  std::optional<Observation> result;
  hafront::health::ProbeTarget target{service, server, *address};
  auto probe = hafront::health::start_probe(io, *check, target, [&](Observation o) { result = std::move(o); });
  io.run();  // ends once the probe and everything it left behind (a child to reap) are done
  if (!result) {
    std::cerr << "the probe ended without a result\n";
    return 2;
  }
  std::cout << json::serialize(to_json(*result)) << std::endl;
  return result->ok ? 0 : 1;
}
