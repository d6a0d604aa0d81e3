#include "config/yaml_reader.h"

#include <algorithm>

#include "config/units.h"

namespace hafront::config::detail {
namespace {

// Marks are 0-based in yaml-cpp; null nodes carry a mark of -1.
bool has_mark(const YAML::Mark& m) { return m.line >= 0 && m.column >= 0; }

// An empty value (`name:` with nothing after it) carries the mark of whatever token comes
// next, often on a later line; point at its key (or list) instead.
YAML::Mark mark_or(const YAML::Node& node, const YAML::Mark& fallback) {
  YAML::Mark m = node.Mark();
  return has_mark(m) && !node.IsNull() ? m : fallback;
}

// Scalars shown in messages are cut short and stripped of control characters, so a binary
// or huge value cannot flood the output.
std::string excerpt(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (out.size() >= 40) {
      out += "...";
      break;
    }
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  }
  return out;
}

}  // namespace

void Context::add(Diagnostic::Severity sev, const YAML::Mark& mark, std::string message) {
  if (recorded_ >= kMaxDiagnostics) {
    if (recorded_++ == kMaxDiagnostics) {
      Diagnostic d;
      d.file = file_;
      d.message = "too many errors; only the first " + std::to_string(kMaxDiagnostics) + " are listed";
      out_.push_back(std::move(d));
    }
    return;
  }
  ++recorded_;
  Diagnostic d;
  d.severity = sev;
  d.file = file_;
  d.line = has_mark(mark) ? mark.line + 1 : 0;
  d.column = has_mark(mark) ? mark.column + 1 : 0;
  d.message = std::move(message);
  out_.push_back(std::move(d));
}

void Context::error(const YAML::Mark& mark, std::string message) {
  ++errors_;
  add(Diagnostic::Severity::Error, mark, std::move(message));
}

void Context::warning(const YAML::Mark& mark, std::string message) {
  add(Diagnostic::Severity::Warning, mark, std::move(message));
}

bool Context::spend(const YAML::Mark& mark) {
  if (budget_ > 0) {
    --budget_;
    return true;
  }
  if (!budget_reported_) {
    budget_reported_ = true;
    error(mark, "the document expands to too many nodes (aliases?); giving up here");
  }
  return false;
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Null: return "nothing";
    case YAML::NodeType::Scalar: return "'" + excerpt(node.Scalar()) + "'";
    default: return "an undefined value";
  }
}

std::optional<std::string> read_string(Context& ctx, const Value& v) {
  if (!v.node.IsScalar()) {
    ctx.error(v.place.mark, v.place.path + ": expected a text value, got " + describe(v.node));
    return std::nullopt;
  }
  return v.node.Scalar();
}

std::optional<std::string> read_name(Context& ctx, const Value& v) {
  auto s = read_string(ctx, v);
  if (s && !is_valid_name(*s)) {
    ctx.error(v.place.mark, v.place.path + ": '" + excerpt(*s) +
                                "' is not a valid name (1-63 of A-Z a-z 0-9 _ . -, starting "
                                "with a letter or digit)");
    return std::nullopt;
  }
  return s;
}

std::optional<bool> read_bool(Context& ctx, const Value& v) {
  if (v.node.IsScalar()) {
    const std::string& s = v.node.Scalar();
    if (s == "true") return true;
    if (s == "false") return false;
  }
  ctx.error(v.place.mark, v.place.path + ": expected true or false, got " + describe(v.node));
  return std::nullopt;
}

std::optional<uint64_t> read_uint(Context& ctx, const Value& v, uint64_t min, uint64_t max) {
  auto range = " (" + std::to_string(min) + ".." + std::to_string(max) + ")";
  if (v.node.IsScalar()) {
    const std::string& s = v.node.Scalar();
    uint64_t n = 0;
    bool digits = !s.empty() && s.size() <= 19 &&
                  std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (digits) {
      n = std::stoull(s);
      if (n >= min && n <= max) return n;
      ctx.error(v.place.mark, v.place.path + ": " + s + " is out of range" + range);
      return std::nullopt;
    }
  }
  ctx.error(v.place.mark,
            v.place.path + ": expected a whole number" + range + ", got " + describe(v.node));
  return std::nullopt;
}

std::optional<Duration> read_duration(Context& ctx, const Value& v, Duration min, Duration max) {
  std::optional<Duration> d;
  if (v.node.IsScalar()) d = parse_duration(v.node.Scalar());
  const std::string range = " (" + format_duration(min) + ".." + format_duration(max) + ")";
  if (!d && v.node.IsScalar()) {
    // A well-formed number with a known unit that still does not parse is either longer
    // than any duration allows or finer than a millisecond: say which.
    const std::string& s = v.node.Scalar();
    size_t u = s.find_first_not_of("0123456789.");
    size_t dot = s.find('.');
    bool number = u != 0 && u != std::string::npos && s.find('.', dot + 1) >= u &&
                  dot != 0 && (dot == std::string::npos || dot + 1 < u);
    std::string unit = number ? s.substr(u) : "";
    if (unit == "ms" || unit == "s" || unit == "m" || unit == "h" || unit == "d") {
      bool whole_ok = dot < u && parse_duration(s.substr(0, dot) + unit).has_value();
      ctx.error(v.place.mark, v.place.path + ": " + excerpt(s) +
                                  (whole_ok ? " is not a whole number of milliseconds"
                                            : " is out of range" + range));
      return std::nullopt;
    }
  }
  if (!d) {
    ctx.error(v.place.mark, v.place.path +
                                ": expected a duration with a unit (ms, s, m, h, d), like 300ms "
                                "or 90m; got " +
                                describe(v.node));
    return std::nullopt;
  }
  if (*d < min || *d > max) {
    ctx.error(v.place.mark, v.place.path + ": " + v.node.Scalar() + " is out of range" + range);
    return std::nullopt;
  }
  return d;
}

std::optional<uint64_t> read_size(Context& ctx, const Value& v, uint64_t min, uint64_t max) {
  std::optional<uint64_t> n;
  if (v.node.IsScalar()) n = parse_size(v.node.Scalar());
  if (!n) {
    ctx.error(v.place.mark, v.place.path + ": expected a size like 16KiB or 4MiB, got " +
                                describe(v.node));
    return std::nullopt;
  }
  if (*n < min || *n > max) {
    ctx.error(v.place.mark, v.place.path + ": " + v.node.Scalar() + " is out of range (" +
                                std::to_string(min) + ".." + std::to_string(max) + " bytes)");
    return std::nullopt;
  }
  return n;
}

void for_each_item(Context& ctx, const Value& v, const std::function<void(const Value&)>& fn) {
  if (!v.node.IsSequence()) {
    ctx.error(v.place.mark, v.place.path + ": expected a list, got " + describe(v.node));
    return;
  }
  size_t i = 0;
  for (const auto& item : v.node) {
    if (!ctx.spend(v.place.mark)) return;
    Value iv{item, {v.place.path + "[" + std::to_string(i++) + "]", mark_or(item, v.place.mark)}};
    fn(iv);
  }
}

std::vector<std::string> read_string_list(Context& ctx, const Value& v) {
  std::vector<std::string> out;
  for_each_item(ctx, v, [&](const Value& item) {
    if (auto s = read_string(ctx, item)) out.push_back(*s);
  });
  return out;
}

namespace {

// Walks a mapping's pairs: reports a non-mapping, non-scalar keys and duplicates, and
// returns the distinct entries with their key marks. nullopt if not a mapping.
struct Entry {
  std::string key;
  YAML::Mark key_mark;
  Value value;
};

std::optional<std::vector<Entry>> entries_of(Context& ctx, const Value& v) {
  if (!v.node.IsMap()) {
    ctx.error(v.place.mark, (v.place.path.empty() ? std::string("the file") : v.place.path) +
                                ": expected a mapping (key: value), got " + describe(v.node));
    return std::nullopt;
  }
  std::vector<Entry> entries;
  for (auto it = v.node.begin(); it != v.node.end(); ++it) {
    if (!ctx.spend(v.place.mark)) break;
    const YAML::Node key = it->first;  // a copy: it-> is a temporary proxy
    YAML::Mark km = mark_or(key, v.place.mark);
    if (!key.IsScalar()) {
      ctx.error(km, v.place.path + ": keys must be plain text, got " + describe(key));
      continue;
    }
    const std::string& k = key.Scalar();
    auto dup = std::find_if(entries.begin(), entries.end(),
                            [&](const Entry& e) { return e.key == k; });
    if (dup != entries.end()) {
      ctx.error(km, (v.place.path.empty() ? std::string("top level") : v.place.path) +
                        ": duplicate key '" + excerpt(k) + "' (first at line " +
                        std::to_string(dup->key_mark.line + 1) + ")");
      continue;
    }
    std::string child = v.place.path.empty() ? k : v.place.path + "." + k;
    entries.push_back(Entry{k, km, Value{it->second, {child, mark_or(it->second, km)}}});
  }
  return entries;
}

}  // namespace

MapView::MapView(Context& ctx, const Value& v, std::initializer_list<std::string_view> allowed,
                 std::initializer_list<std::string_view> required)
    : ctx_(ctx), place_(v.place) {
  auto entries = entries_of(ctx, v);
  if (!entries) return;
  valid_ = true;
  const std::string where = place_.path.empty() ? "at the top level" : "in " + place_.path;
  for (auto& [key, key_mark, value] : *entries) {
    bool known = std::find(allowed.begin(), allowed.end(), key) != allowed.end();
    if (known) {
      entries_.emplace_back(key, value);
      continue;
    }
    std::string_view best;
    size_t best_d = 3;
    for (auto a : allowed) {
      size_t d = edit_distance(key, a);
      if (d < best_d) best_d = d, best = a;
    }
    std::string msg = "unknown key '" + excerpt(key) + "' " + where;
    if (key == "<<") {
      msg += "; YAML merge keys are not supported, write the keys out (aliases like *name work)";
    } else if (!best.empty()) {
      msg += "; did you mean '" + std::string(best) + "'?";
    } else {
      msg += "; expected one of: ";
      bool first = true;
      for (auto a : allowed) {
        msg += first ? "" : ", ";
        msg += a;
        first = false;
      }
    }
    ctx.error(key_mark, msg);
  }
  for (auto r : required) {
    if (!find(r)) ctx.error(place_.mark, (place_.path.empty() ? std::string("the file") : place_.path) +
                                             ": missing required key '" + std::string(r) + "'");
  }
}

std::optional<Value> MapView::find(std::string_view key) const {
  for (const auto& [k, v] : entries_) {
    if (k == key) return v;
  }
  return std::nullopt;
}

void MapView::get(std::string_view key, std::string& out) const {
  if (auto v = find(key)) {
    if (auto s = read_string(ctx_, *v)) out = *s;
  }
}

void MapView::get(std::string_view key, std::optional<std::string>& out) const {
  if (auto v = find(key)) {
    if (auto s = read_string(ctx_, *v)) out = *s;
  }
}

void MapView::get(std::string_view key, bool& out) const {
  if (auto v = find(key)) {
    if (auto b = read_bool(ctx_, *v)) out = *b;
  }
}

void MapView::get(std::string_view key, Duration& out, Duration min, Duration max) const {
  if (auto v = find(key)) {
    if (auto d = read_duration(ctx_, *v, min, max)) out = *d;
  }
}

void MapView::get(std::string_view key, uint32_t& out, uint64_t min, uint64_t max) const {
  if (auto v = find(key)) {
    if (auto n = read_uint(ctx_, *v, min, max)) out = static_cast<uint32_t>(*n);
  }
}

void MapView::get(std::string_view key, std::optional<uint32_t>& out, uint64_t min,
                  uint64_t max) const {
  if (auto v = find(key)) {
    if (auto n = read_uint(ctx_, *v, min, max)) out = static_cast<uint32_t>(*n);
  }
}

void MapView::get_size(std::string_view key, uint64_t& out, uint64_t min, uint64_t max) const {
  if (auto v = find(key)) {
    if (auto n = read_size(ctx_, *v, min, max)) out = *n;
  }
}

void for_each_named(Context& ctx, const Value& v, const char* what,
                    const std::function<void(const std::string&, const Value&)>& fn) {
  auto entries = entries_of(ctx, v);
  if (!entries) return;
  for (auto& [name, key_mark, value] : *entries) {
    if (!is_valid_name(name)) {
      ctx.error(key_mark, v.place.path + ": '" + excerpt(name) + "' is not a valid " +
                                      what +
                                      " name (1-63 of A-Z a-z 0-9 _ . -, starting with a "
                                      "letter or digit)");
      continue;
    }
    fn(name, value);
  }
}

}  // namespace hafront::config::detail
