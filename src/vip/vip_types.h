// Plain types of VIP ownership on this node: the state machine's states, events and the
// actions it asks an executor to carry out.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace hafront::vip {

using Clock = std::chrono::steady_clock;
using Duration = std::chrono::milliseconds;

// The life of a VIP on one node: released -> acquiring -> held -> releasing -> released.
enum class VipState : uint8_t { Released, Acquiring, Held, Releasing };

// What the state machine is waiting for while acquiring or releasing.
enum class Pending : uint8_t { None, Probe, Add, Delete, Retry };

enum class TimerKind : uint8_t { Refresh, Retry };

// ---- events --------------------------------------------------------------------------
enum class EventKind : uint8_t {
  Want,            // the decision: this node should hold the VIP
  Unwant,          // the decision: this node should not hold it
  ProbeClear,      // nobody else answered for the address
  ProbeConflict,   // someone else answered (detail: who)
  AddressAdded,    // the address is on the interface (ack or netlink notification)
  AddressAddFailed,
  AddressDeleted,  // the address is gone: our delete's ack, or a notification
  AddressDeleteFailed,
  LinkDown,        // the interface lost carrier or was set down
  LinkUp,
  TimerFired,      // timer: which one
};

struct Event {
  EventKind kind;
  std::string detail;  // failure text, conflicting MAC, ...
  TimerKind timer = TimerKind::Refresh;
};

// ---- actions -------------------------------------------------------------------------
struct ProbeForConflict { Duration wait; };   // ARP probe / DAD NS, listen for `wait`
struct AddAddress {};
struct DeleteAddress {};
struct Announce { uint32_t count; Duration interval; };  // GARP (both forms) or unsolicited NA
struct StartTimer { TimerKind kind; Duration after; };
struct CancelTimer { TimerKind kind; };
struct CloseConnections {};                   // destroy TCP sockets on the VIP (not listeners)
struct RaiseAlert { std::string message; };
struct ReportServable { bool servable; std::string reason; };

using Action = std::variant<ProbeForConflict, AddAddress, DeleteAddress, Announce, StartTimer, CancelTimer,
                            CloseConnections, RaiseAlert, ReportServable>;

// Everything the machine remembers about one VIP.
struct MachineState {
  VipState state = VipState::Released;
  Pending pending = Pending::None;
  bool want = false;     // the latest decision
  bool link_up = true;   // the interface's carrier, as last reported
  std::string reason;    // why the VIP is in this state, for status
  Clock::time_point since{};

  bool operator==(const MachineState&) const = default;
};

struct StepResult {
  MachineState state;
  std::vector<Action> actions;
};

const char* to_string(VipState);
const char* to_string(EventKind);
std::string describe(const Action&);  // for logs and tests: "add-address", "announce 5x100ms", ...

}  // namespace hafront::vip
