// Inside the probes: what every kind shares (the completion called exactly once, the
// whole-probe deadline, the duration) and the constructor of each kind. Not for other
// parts: they use probe.h.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "health/probe.h"

namespace hafront::health::detail {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

// One probe's state, owned by the handlers of its own asynchronous operations
// (shared_from_this), so it lives exactly as long as something can still happen to it. The
// Probe handle that start_probe() returns only cancels it.
class ProbeBase : public std::enable_shared_from_this<ProbeBase> {
 public:
  ProbeBase(asio::io_context& io, const config::Check& check, ProbeDone done);
  virtual ~ProbeBase() = default;
  ProbeBase(const ProbeBase&) = delete;
  ProbeBase& operator=(const ProbeBase&) = delete;

  // Begins the work: arms the deadline and starts the first asynchronous operation. Called
  // once, by start_probe(); never completes from inside (a failure found here is posted).
  void start();
  // Abandons the probe: no completion afterwards, resources closed (close()). Idempotent;
  // does nothing after the completion ran.
  void cancel();

 protected:
  virtual void begin() = 0;  // the kind's first step
  // Closes the kind's sockets and descriptors, kills a child: after the completion ran or
  // at cancel(). Called at most once. Pending handlers then see `live()` false.
  virtual void close() = 0;
  // The deadline passed while the probe was still running: finish with the phase's reason.
  virtual void on_deadline() = 0;

  bool live() const { return static_cast<bool>(done_); }
  // Ends the probe: closes, fills in the duration and calls the completion, once. Call from
  // a handler, never from begin().
  void finish(Observation o);
  // The same, from the loop (for failures found inside begin()).
  void finish_soon(Observation o);

  // "timed out after 500ms <phase>".
  std::string timeout_reason(std::string_view phase) const;
  Observation timed_out(std::string_view phase) const;

  asio::io_context& io_;
  const config::Duration timeout_;
  Clock::time_point started_;

 private:
  ProbeDone done_;
  asio::steady_timer deadline_;
  bool closed_ = false;
};

// Observation helpers.
Observation failed(ProbeRun run, std::string reason);

// The Asio endpoint of a config endpoint.
asio::ip::tcp::endpoint to_asio(const config::Endpoint& e);

// A connect failure in a few words: "connect refused", "no route to host", ...
std::string connect_failure(const boost::system::error_code& ec);

// The kinds. `endpoint` is probe_endpoint(check, target).
std::shared_ptr<ProbeBase> make_tcp_probe(asio::io_context& io, const config::Check& check,
                                          const config::Endpoint& endpoint, ProbeDone done);
std::shared_ptr<ProbeBase> make_http_probe(asio::io_context& io, const config::Check& check,
                                           const config::Endpoint& endpoint, ProbeDone done);
std::shared_ptr<ProbeBase> make_mysql_probe(asio::io_context& io, const config::Check& check,
                                            const config::Endpoint& endpoint, ProbeDone done);
std::shared_ptr<ProbeBase> make_exec_probe(asio::io_context& io, const config::Check& check,
                                           const ProbeTarget& target, const config::Endpoint& endpoint,
                                           ProbeDone done);

// Test hook: reap exec children by polling waitpid (the fallback for kernels without
// pidfd_open) instead of waiting on a pidfd.
void set_exec_reaping_by_polling(bool polling);

}  // namespace hafront::health::detail
