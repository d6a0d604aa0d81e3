// Runs one fence agent (fence_ipmilan, fence_apc_snmp, fence_redfish, ...) as an
// asynchronous child of the control loop, the way Pacemaker's fencer does:
//
//  - parameters go on stdin as key=value lines (the ClusterLabs fence agent API), so a
//    secret read from its file never appears in argv, /proc/PID/cmdline, the log or status;
//  - the agent gets its own session (process group) and a clean environment (PATH, LANG,
//    PYTHONWARNINGS=ignore; never PCMK_service, which disables the agents' own time-outs);
//  - at the time-out the whole process group is killed (ipmitool, snmpset children too);
//  - the result has two axes: how the run went (ExecStatus) and what the agent answered
//    (Answer), plus a short reason taken from the agent's own ERROR line.
//
// Exit codes per the agent API: status 0 = on, 2 = off, 1 = error; every other action
// 0 = success, 1 = failure. Anything else (or a death by signal) is an execution error.
#pragma once

#include <boost/asio.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fence/fence_types.h"

namespace hafront::fence {

struct AgentRequest {
  std::string agent;   // fence_NAME (searched in the agent folders) or an absolute path
  std::string action;  // off, on, reboot, status, monitor, list, metadata
  std::map<std::string, std::string> params;        // plain parameters
  std::map<std::string, std::string> secret_files;  // parameter -> file holding its value
  std::optional<std::string> plug;                  // passed as port=
  std::chrono::milliseconds timeout{30000};
};

struct AgentResult {
  ExecStatus exec = ExecStatus::Error;
  Answer answer = Answer::None;
  int exit_code = -1;                 // -1 when it did not exit normally
  std::string reason;                 // one line, secrets redacted; empty on plain success
  std::string output;                 // stdout, bounded, secrets redacted (metadata, list)
  std::chrono::milliseconds elapsed{0};

  bool ok() const { return exec == ExecStatus::Done && answer == Answer::Ok; }
  std::string describe() const;  // "ok", "off", "timeout after 30000 ms", "failed: <reason>"
};

// The run interface the fence executor needs; tests give it scripted completions.
class Runner {
 public:
  virtual ~Runner() = default;
  using Done = std::function<void(AgentResult)>;
  // Starts a run; `done` is called exactly once, from the io_context, unless the returned
  // handle's cancel() is called first (the run is then killed and `done` never called).
  class Handle {
   public:
    virtual ~Handle() = default;
    virtual void cancel() = 0;
  };
  virtual std::shared_ptr<Handle> run(const AgentRequest& request, Done done) = 0;
};

class AgentRunner : public Runner {
 public:
  // agent_dirs: where fence_NAME is looked for, in order (Debian: /usr/sbin).
  AgentRunner(boost::asio::io_context& io, std::vector<std::string> agent_dirs);
  ~AgentRunner() override;  // kills every run still going

  std::shared_ptr<Handle> run(const AgentRequest& request, Done done) override;
  void set_agent_dirs(std::vector<std::string> dirs) { dirs_ = std::move(dirs); }

  // The path an agent name resolves to, or nullopt if it is not installed.
  std::optional<std::string> resolve(const std::string& agent) const;

  size_t running() const;

 private:
  class Run;
  boost::asio::io_context& io_;
  std::vector<std::string> dirs_;
  std::shared_ptr<std::vector<std::weak_ptr<Run>>> runs_;
};

// Blocking convenience for command-line tools (hafrontctl check): runs one request on a
// private io_context.
AgentResult run_agent_sync(const std::vector<std::string>& agent_dirs, const AgentRequest& request);

// The stdin text for a request (exposed for tests): one key=value per line, secrets
// included (read from their files), values never containing a newline.
std::optional<std::string> render_stdin(const AgentRequest& request, std::vector<std::string>& secrets,
                                        std::string& error);

}  // namespace hafront::fence
