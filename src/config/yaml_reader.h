// Strict, error-collecting reading of a yaml-cpp tree (internal to src/config).
//
// Every reader reports what is wrong at the mark of the offending key or value and carries
// on, so one pass reports every error in the file. Keys are checked against a fixed set,
// duplicates are refused, scalars are converted with the parsers of units.h. A visit budget
// bounds the work on documents whose aliases would expand into huge trees.
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"

namespace hafront::config::detail {

class Context {
 public:
  // More findings than this are counted, not listed: a broken file cannot flood the output.
  static constexpr size_t kMaxDiagnostics = 100;

  Context(std::string file, std::vector<Diagnostic>& out) : file_(std::move(file)), out_(out) {}

  void error(const YAML::Mark& mark, std::string message);
  void warning(const YAML::Mark& mark, std::string message);
  size_t error_count() const { return errors_; }
  const std::string& file() const { return file_; }

  // Charges one visited node; false once the budget is spent (reported once).
  bool spend(const YAML::Mark& mark);

 private:
  void add(Diagnostic::Severity, const YAML::Mark&, std::string);
  std::string file_;
  std::vector<Diagnostic>& out_;
  size_t errors_ = 0;
  size_t budget_ = 200'000;
  bool budget_reported_ = false;
  size_t recorded_ = 0;  // diagnostics kept; past kMaxDiagnostics only a count is kept
};

// Where a value sits, for messages: the dotted path and the mark to point at.
struct Place {
  std::string path;
  YAML::Mark mark;
};

// A value node and where it is; the mark falls back to its key's when the value is empty.
struct Value {
  YAML::Node node;
  Place place;
};

std::string describe(const YAML::Node& node);  // "a mapping", "the scalar 'x'", ...

// Scalar readers: nullopt after reporting an error.
std::optional<std::string> read_string(Context&, const Value&);
std::optional<std::string> read_name(Context&, const Value&);
std::optional<bool> read_bool(Context&, const Value&);
std::optional<uint64_t> read_uint(Context&, const Value&, uint64_t min, uint64_t max);
std::optional<Duration> read_duration(Context&, const Value&, Duration min, Duration max);
std::optional<uint64_t> read_size(Context&, const Value&, uint64_t min, uint64_t max);

template <typename E>
using EnumTable = std::initializer_list<std::pair<std::string_view, E>>;

template <typename E>
std::optional<E> read_enum(Context& ctx, const Value& v, EnumTable<E> table) {
  auto text = read_string(ctx, v);
  if (!text) return std::nullopt;
  std::string names;
  for (const auto& [name, value] : table) {
    if (*text == name) return value;
    names += names.empty() ? "" : ", ";
    names += name;
  }
  ctx.error(v.place.mark, v.place.path + ": '" + *text + "' is not one of: " + names);
  return std::nullopt;
}

// Calls fn for each element of a sequence; reports a non-sequence. A single scalar is
// refused too: lists are always written as lists.
void for_each_item(Context&, const Value&, const std::function<void(const Value&)>& fn);
std::vector<std::string> read_string_list(Context&, const Value&);

// A mapping with a fixed set of keys.
class MapView {
 public:
  MapView(Context& ctx, const Value& v, std::initializer_list<std::string_view> allowed,
          std::initializer_list<std::string_view> required = {});

  bool valid() const { return valid_; }
  const Place& place() const { return place_; }
  Context& ctx() const { return ctx_; }
  // The value under key, if present (explicit nulls count as present).
  std::optional<Value> find(std::string_view key) const;

  // Typed getters: assign when the key is present and its value valid; report otherwise.
  void get(std::string_view key, std::string& out) const;
  void get(std::string_view key, bool& out) const;
  void get(std::string_view key, Duration& out, Duration min = Duration{0},
           Duration max = Duration{10LL * 365 * 86'400'000}) const;
  void get(std::string_view key, uint32_t& out, uint64_t min, uint64_t max) const;
  void get(std::string_view key, std::optional<std::string>& out) const;
  void get(std::string_view key, std::optional<uint32_t>& out, uint64_t min, uint64_t max) const;
  void get_size(std::string_view key, uint64_t& out, uint64_t min, uint64_t max) const;
  template <typename E>
  void get(std::string_view key, E& out, EnumTable<E> table) const {
    if (auto v = find(key)) {
      if (auto e = read_enum(ctx_, *v, table)) out = *e;
    }
  }

 private:
  Context& ctx_;
  Place place_;
  bool valid_ = false;
  std::vector<std::pair<std::string, Value>> entries_;
};

// A mapping of user-chosen names (services, checks, ...) to values. Reports a
// non-mapping, duplicate names and invalid names; calls fn for each valid entry.
void for_each_named(Context&, const Value&, const char* what,
                    const std::function<void(const std::string& name, const Value&)>& fn);

}  // namespace hafront::config::detail
