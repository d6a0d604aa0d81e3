#include "fence/metadata.h"

#include <algorithm>
#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>
#include <cctype>
#include <optional>
#include <sstream>

#include "config/units.h"

namespace hafront::fence {
namespace {

namespace ptree = boost::property_tree;

// Real metadata nests five deep (resource-agent/parameters/parameter/content/option).
// The XML reader and the tree recurse once per level, so a deeply nested input would
// exhaust the stack (50000 levels crash it, well inside kMaxMetadataBytes).
constexpr int kMaxDepth = 32;

// The deepest element nesting of `xml`, or nullopt as soon as it passes kMaxDepth. Not a
// parser: it only follows the rules the XML reader uses to find where tags start and end
// (quoted attribute values, comments, CDATA, processing instructions); anything it cannot
// follow is left for the reader to refuse.
std::optional<int> nesting_within_limit(std::string_view xml) {
  auto skip_past = [&](size_t from, std::string_view end) {
    size_t at = xml.find(end, from);
    return at == std::string_view::npos ? xml.size() : at + end.size();
  };
  int depth = 0, deepest = 0;
  size_t i = 0;
  while ((i = xml.find('<', i)) != std::string_view::npos) {
    std::string_view rest = xml.substr(i);
    if (rest.starts_with("<?")) {
      i = skip_past(i, "?>");
    } else if (rest.starts_with("<!--")) {
      i = skip_past(i + 4, "-->");
    } else if (rest.starts_with("<![CDATA[")) {
      i = skip_past(i, "]]>");
    } else if (rest.starts_with("</")) {
      --depth;
      i = skip_past(i, ">");
    } else {
      // A start tag (or a <!DOCTYPE, which counts as one: over-counting is harmless).
      size_t j = i + 1;
      char quote = 0;
      for (; j < xml.size(); ++j) {
        char c = xml[j];
        if (quote) {
          if (c == quote) quote = 0;
        } else if (c == '"' || c == '\'') {
          quote = c;
        } else if (c == '>') {
          break;
        }
      }
      bool self_closing = j < xml.size() && xml[j - 1] == '/';
      if (!self_closing && ++depth > kMaxDepth) return std::nullopt;
      deepest = std::max(deepest, depth);
      i = j;
    }
  }
  return deepest;
}

std::string attribute(const ptree::ptree& node, const std::string& name) {
  if (auto attrs = node.get_child_optional("<xmlattr>")) {
    if (auto v = attrs->get_optional<std::string>(ptree::ptree::path_type(name, '\0'))) return *v;
  }
  return {};
}

// Parameter names go into messages and onto the agent's stdin: keep them plain.
bool plain_name(std::string_view s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

std::variant<AgentParameter, std::string> read_parameter(const ptree::ptree& node, size_t index) {
  AgentParameter p;
  p.name = attribute(node, "name");
  if (!plain_name(p.name)) {
    return "parameter #" + std::to_string(index) + (p.name.empty() ? " has no name" : " has a malformed name");
  }
  p.required = attribute(node, "required") == "1";
  p.deprecated = attribute(node, "deprecated") == "1";
  p.obsoletes = attribute(node, "obsoletes");
  if (!p.obsoletes.empty() && !plain_name(p.obsoletes)) {
    return "parameter '" + p.name + "' obsoletes a malformed name";
  }
  p.type = "string";  // fencing.py's default; an unknown type is also checked as a string
  if (auto content = node.get_child_optional("content")) {
    if (std::string t = attribute(*content, "type"); !t.empty()) p.type = t;
    p.default_value = attribute(*content, "default");
    for (const auto& [key, option] : *content) {
      if (key == "option") p.options.push_back(attribute(option, "value"));
    }
  }
  return p;
}

std::variant<AgentMetadata, std::string> read_tree(const ptree::ptree& doc) {
  const ptree::ptree* root = nullptr;
  std::string root_name;
  for (const auto& [key, child] : doc) {
    if (key.starts_with("<")) continue;  // <xmlattr>, <xmlcomment>: not elements
    if (root) return std::string("metadata has more than one top-level element");
    root = &child;
    root_name = key;
  }
  if (!root) return std::string("metadata has no XML element");
  if (root_name != "resource-agent") {
    return "metadata's top-level element is <" + root_name + ">, expected <resource-agent>";
  }

  AgentMetadata md;
  md.agent = attribute(*root, "name");
  if (md.agent.empty()) return std::string("<resource-agent> has no name");

  auto params = root->get_child_optional("parameters");
  if (!params) return std::string("metadata of " + md.agent + " has no <parameters>");
  for (const auto& [key, node] : *params) {
    if (key != "parameter") continue;
    auto p = read_parameter(node, md.parameters.size() + 1);
    if (auto* err = std::get_if<std::string>(&p)) return "metadata of " + md.agent + ": " + *err;
    auto& param = std::get<AgentParameter>(p);
    // A name described twice would make find() depend on order; no real agent does it.
    for (const auto& other : md.parameters) {
      if (other.name == param.name) {
        return "metadata of " + md.agent + ": parameter '" + param.name + "' is described twice";
      }
    }
    md.parameters.push_back(std::move(param));
  }

  auto actions = root->get_child_optional("actions");
  if (!actions) return std::string("metadata of " + md.agent + " has no <actions>");
  for (const auto& [key, node] : *actions) {
    if (key != "action") continue;
    std::string name = attribute(node, "name");
    if (!plain_name(name)) return "metadata of " + md.agent + ": an <action> has no usable name";
    md.actions.insert(std::move(name));
  }
  return md;
}

// Agents read their stdin with '-' and '_' interchangeable in names.
bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
    return (x == '-' ? '_' : x) == (y == '-' ? '_' : y);
  });
}

// The current name of a parameter: the one that obsoletes it, when it is deprecated.
const AgentParameter* current(const AgentMetadata& md, const AgentParameter* p) {
  if (!p->deprecated) return p;
  for (const auto& q : md.parameters) {
    if (!q.obsoletes.empty() && same_name(q.obsoletes, p->name)) return &q;
  }
  return p;
}

bool is_any(std::string_view name, std::initializer_list<std::string_view> names) {
  return std::any_of(names.begin(), names.end(), [&](std::string_view n) { return same_name(n, name); });
}

// Set by hafront on every run (action, nodename) or from DEVICE:PLUG (plug, and its old name).
bool set_by_hafront(std::string_view name) { return is_any(name, {"action", "nodename", "plug", "port"}); }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The values fencing.py accepts for a boolean read from stdin; any other is ignored with
// only a log line, which would silently leave the option at its default.
std::optional<bool> parse_bool(std::string_view value) {
  std::string v = lower(value);
  if (v == "1" || v == "yes" || v == "on" || v == "true") return true;
  if (v == "0" || v == "no" || v == "off" || v == "false") return false;
  return std::nullopt;
}

// fencing.py checks "integer" and "second" with Python's int().
bool is_integer(std::string_view value) {
  if (!value.empty() && (value[0] == '-' || value[0] == '+')) value.remove_prefix(1);
  return !value.empty() &&
         std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// A value problem of `p`, as fencing.py would see it; empty when the value is acceptable.
std::string check_value(const AgentMetadata& md, const std::string& given, const AgentParameter& p,
                        const std::string& value) {
  std::string what = "parameter '" + given + "' of " + md.agent;
  if (p.type == "boolean" && !parse_bool(value)) {
    return what + " expects a boolean (1/0/yes/no/on/off/true/false), got '" + value + "'";
  }
  if (p.type == "integer" && !is_integer(value)) return what + " expects an integer, got '" + value + "'";
  if (p.type == "second" && !is_integer(value)) {
    return what + " expects a whole number of seconds without a unit, got '" + value + "'";
  }
  if (p.type == "select" && !p.options.empty()) {
    // The agent upper-cases both sides before comparing.
    bool ok = std::any_of(p.options.begin(), p.options.end(),
                          [&](const std::string& o) { return lower(o) == lower(value); });
    if (!ok) return what + " must be one of " + join(p.options) + "; got '" + value + "'";
  }
  return {};
}

// "did you mean" for an unknown name: the closest parameter by edit distance, if close.
std::string suggestion(const AgentMetadata& md, std::string_view name) {
  size_t limit = name.size() <= 4 ? 1 : name.size() <= 8 ? 2 : 3;
  const AgentParameter* best = nullptr;
  size_t best_distance = limit + 1;
  std::string wanted(name);
  std::replace(wanted.begin(), wanted.end(), '-', '_');
  for (const auto& p : md.parameters) {
    if (set_by_hafront(p.name) || is_any(p.name, {"help", "version"})) continue;
    std::string candidate = p.name;
    std::replace(candidate.begin(), candidate.end(), '-', '_');
    size_t d = config::edit_distance(wanted, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = current(md, &p);  // a near-miss of an old name points at the new one
    }
  }
  return best ? " (did you mean '" + best->name + "'?)" : "";
}

}  // namespace

bool AgentMetadata::supports(std::string_view action) const { return actions.count(std::string(action)) > 0; }

const AgentParameter* AgentMetadata::find(std::string_view name) const {
  if (name.empty()) return nullptr;
  for (const auto& p : parameters) {
    if (p.name == name) return &p;
  }
  // fence_redfish lists both "redfish-uri" (deprecated) and "redfish_uri": prefer the current one.
  const AgentParameter* old_spelling = nullptr;
  for (const auto& p : parameters) {
    if (!same_name(p.name, name)) continue;
    if (!p.deprecated) return &p;
    if (!old_spelling) old_spelling = &p;
  }
  if (old_spelling) return old_spelling;
  for (const auto& p : parameters) {
    if (!p.obsoletes.empty() && same_name(p.obsoletes, name)) return &p;
  }
  return nullptr;
}

std::variant<AgentMetadata, std::string> parse_metadata(std::string_view xml) {
  if (xml.size() > kMaxMetadataBytes) {
    return "metadata is " + std::to_string(xml.size()) + " bytes, more than the " +
           std::to_string(kMaxMetadataBytes) + " accepted";
  }
  if (!nesting_within_limit(xml)) {
    return "metadata nests elements more than " + std::to_string(kMaxDepth) + " deep";
  }
  try {
    std::istringstream in{std::string(xml)};
    ptree::ptree doc;
    ptree::read_xml(in, doc, ptree::xml_parser::no_comments | ptree::xml_parser::trim_whitespace);
    return read_tree(doc);
  } catch (const ptree::xml_parser_error& e) {
    return "metadata is not well-formed XML: " + e.message() + " (line " + std::to_string(e.line()) + ")";
  } catch (const std::exception& e) {
    return std::string("metadata could not be read: ") + e.what();
  } catch (...) {
    return std::string("metadata could not be read");
  }
}

Validation validate_device(const AgentMetadata& md, const std::map<std::string, std::string>& params,
                           const std::set<std::string>& secret_names, bool plug_given) {
  Validation v;
  const std::string& agent = md.agent;

  // Every name the user gave, in name order; a secret has no value to check.
  struct Given {
    std::string name;
    const std::string* value;  // nullptr for a secret
  };
  std::vector<Given> given;
  for (const auto& [name, value] : params) given.push_back({name, &value});
  for (const auto& name : secret_names) given.push_back({name, nullptr});
  std::stable_sort(given.begin(), given.end(), [](const Given& a, const Given& b) { return a.name < b.name; });

  std::map<std::string, std::string> present;  // current parameter name -> the name the user wrote
  for (const auto& g : given) {
    std::string source = g.value ? "" : " (given as '" + g.name + "_file')";
    if (set_by_hafront(g.name)) {
      std::string hint = is_any(g.name, {"plug", "port"})
                             ? " (write the plug as DEVICE:PLUG in the node's fencing levels)"
                             : "";
      v.errors.push_back("parameter '" + g.name + "' is set by hafront; remove it from the device" + hint);
      continue;
    }
    const AgentParameter* p = md.find(g.name);
    if (!p) {
      v.errors.push_back("unknown parameter '" + g.name + "' for " + agent + source + suggestion(md, g.name));
      continue;
    }
    const AgentParameter* cur = current(md, p);
    // With either of these on stdin the agent prints text and exits 0 without fencing:
    // a fence that "succeeds" and does nothing.
    if (is_any(cur->name, {"help", "version"})) {
      v.errors.push_back("parameter '" + g.name + "' makes " + agent +
                         " print text and exit 0 without fencing; remove it");
      continue;
    }
    if (!same_name(g.name, cur->name)) {
      v.warnings.push_back("parameter '" + g.name + "' is deprecated; use '" + cur->name + "'");
    } else if (cur->deprecated) {
      v.warnings.push_back("parameter '" + g.name + "' of " + agent + " is deprecated");
    }
    auto [it, inserted] = present.emplace(cur->name, g.name);
    if (!inserted) {
      v.errors.push_back("parameters '" + it->second + "' and '" + g.name + "' of " + agent +
                         " are the same parameter; keep only '" + cur->name + "'");
      continue;
    }
    if (g.value) {
      if (std::string problem = check_value(md, g.name, *p, *g.value); !problem.empty()) {
        v.errors.push_back(std::move(problem));
      }
    }
  }

  // Required parameters. The deprecated twin of a renamed parameter repeats the flag of
  // its replacement, so only the current name is checked; a default satisfies the agent.
  for (const auto& p : md.parameters) {
    if (!p.required || !p.default_value.empty() || set_by_hafront(p.name)) continue;
    if (current(md, &p) != &p) continue;
    if (present.count(p.name) == 0) v.errors.push_back("parameter '" + p.name + "' is required by " + agent);
  }

  // The plug. fencing.py marks plug required="1" for agents that act on one outlet or VM
  // of a shared device; agents with port_as_ip take a plug only as their address.
  const AgentParameter* plug = md.find("plug");
  if (!plug) plug = md.find("port");
  const AgentParameter* port_as_ip = md.find("port_as_ip");
  bool plug_is_address = false;
  for (const auto& [name, value] : params) {
    if (port_as_ip && md.find(name) == port_as_ip) plug_is_address = parse_bool(value).value_or(false);
  }
  if (plug && plug->required && !plug_given) {
    v.errors.push_back(agent + " needs a plug: write the device as DEVICE:PLUG in the node's fencing levels");
  } else if (!plug && plug_given) {
    v.errors.push_back(agent + " takes no plug: write the device without ':PLUG' in the node's fencing levels");
  } else if (plug_given && port_as_ip && !plug->required && !plug_is_address) {
    v.warnings.push_back(agent + " ignores the plug unless port_as_ip is set");
  }

  // Agents with port_as_ip have ip marked not required in their metadata, yet refuse to run
  // without an address ("You have to enter fence address"). Like the agent, accept
  // 'target' or 'managed' instead.
  const AgentParameter* ip = md.find("ip");
  if (port_as_ip && ip && !current(md, ip)->required) {
    bool address = present.count(current(md, ip)->name) > 0 || (plug_is_address && plug_given);
    for (const char* alternative : {"target", "managed"}) {
      const AgentParameter* a = md.find(alternative);
      if (a && present.count(current(md, a)->name) > 0) address = true;
    }
    if (!address) {
      v.errors.push_back("parameter '" + current(md, ip)->name + "' is required by " + agent +
                         " (or set port_as_ip and give the address as the plug)");
    }
  }
  return v;
}

Validation validate_configured_device(const AgentMetadata& md, const config::Config& config,
                                      const config::FenceDevice& device) {
  std::set<bool> uses;  // with a plug, without one
  for (const auto& n : config.cluster.nodes) {
    for (const auto& level : n.fencing) {
      for (const auto& ref : level) {
        if (ref.device == device.name) uses.insert(ref.plug.has_value());
      }
    }
  }
  if (uses.empty()) uses.insert(false);
  std::set<std::string> secrets;
  for (const auto& [k, v] : device.secrets) secrets.insert(k);
  Validation out;
  std::set<std::string> seen;
  for (bool plug : uses) {
    Validation v = validate_device(md, device.params, secrets, plug);
    for (auto& e : v.errors) {
      if (seen.insert(e).second) out.errors.push_back(std::move(e));
    }
    for (auto& w : v.warnings) {
      if (seen.insert(w).second) out.warnings.push_back(std::move(w));
    }
  }
  return out;
}

}  // namespace hafront::fence
