// A fence agent's own description of itself (`fence_X -o metadata`), and the check of a
// configured fence device against it, so that a typo or a missing address is reported
// when the config is loaded rather than when a node has to be fenced.
//
// What the metadata of fence-agents 4.12.1 means, as read from fencing.py:
// - A renamed parameter appears twice: the new name with obsoletes="OLD" and the old name
//   with deprecated="1". Both carry the same `required`; the agent treats them as one.
// - required="1" is set on `action` (hafront passes it) and, for agents that act on one
//   outlet/VM of a shared device, on `plug` (hafront passes it from DEVICE:PLUG).
// - Agents that offer `port_as_ip` (fence_ipmilan, fence_redfish, fence_ilo*, ...) have
//   `ip` and `plug` marked required="0" in their metadata, yet refuse to run without an
//   address; validate_device() applies that rule as the agent does.
// - Agents read names on stdin with '-' and '_' interchangeable; select values are
//   compared case-insensitively; booleans accept 1/0/yes/no/on/off/true/false.
// - A required parameter with a default is filled in by the agent before its own check.
#pragma once

#include <map>

#include "config/config_types.h"
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace hafront::fence {

struct AgentParameter {
  std::string name;                  // e.g. "ip"
  bool required = false;
  bool deprecated = false;           // an old name; another parameter obsoletes it
  std::string obsoletes;             // e.g. "ipaddr": the old name this one replaces, or empty
  std::string type;                  // "string", "boolean", "integer", "second", "select"
  std::vector<std::string> options;  // the allowed values of a "select"
  std::string default_value;         // empty when the agent has none
};

struct AgentMetadata {
  std::string agent;  // the name attribute of <resource-agent>
  std::vector<AgentParameter> parameters;
  std::set<std::string> actions;  // from <actions><action name=...>

  bool supports(std::string_view action) const;
  // The parameter the agent would use for `name`: an exact name first, then a name with
  // '-' and '_' interchangeable (preferring a current name to a deprecated one), then a
  // parameter whose `obsoletes` is that name. nullptr if the agent has no such parameter.
  const AgentParameter* find(std::string_view name) const;
};

// Largest metadata text accepted; real agents print 5-30 KiB.
inline constexpr size_t kMaxMetadataBytes = 1 << 20;

// Parses the XML an agent prints for `metadata`. Never throws: malformed, oversized,
// too deeply nested or unexpected XML (wrong root element, a parameter without a name,
// no <parameters> or <actions>) gives an error text instead.
std::variant<AgentMetadata, std::string> parse_metadata(std::string_view xml);

struct Validation {
  std::vector<std::string> errors;    // the agent would refuse to run, or would not fence
  std::vector<std::string> warnings;  // works, but should be changed (deprecated names)
};

// Checks one fence device against its agent's metadata; one human-readable line per
// problem, in a stable order (parameters by name).
// `params`: the device's plain parameters (name -> value).
// `secret_names`: parameters given through NAME_file secrets (e.g. "password"); they count
//   as present, and their values are not checked.
// `plug_given`: whether the node's fencing levels name a plug (DEVICE:PLUG) for it.
// hafront itself passes `action`, `nodename` and, when plug_given, `plug`; those are never
// required of the user and are errors when the user sets them.
Validation validate_device(const AgentMetadata& md, const std::map<std::string, std::string>& params,
                           const std::set<std::string>& secret_names, bool plug_given);

// validate_device() for a configured device, once for each way the nodes' fencing levels
// use it (with a plug, without one); each problem reported once.
Validation validate_configured_device(const AgentMetadata& md, const config::Config& config,
                                      const config::FenceDevice& device);

}  // namespace hafront::fence
