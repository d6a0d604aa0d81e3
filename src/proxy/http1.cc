#include "proxy/http1.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "proxy/http1_chars.h"

namespace hafront::proxy::http1 {
namespace {

using chars::is_digit;
using chars::is_ows;
using chars::is_tchar;

// ---- small helpers --------------------------------------------------------------------

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return is_tchar(c); });
}

// The first CR or LF in [p, end), or end. Two memchr passes, the second bounded by the
// first, so a buffer is never searched twice beyond the line break.
const char* find_line_break(const char* p, const char* end) {
  if (p == end) return end;
  const void* cr = std::memchr(p, '\r', static_cast<size_t>(end - p));
  const char* stop = cr ? static_cast<const char*>(cr) : end;
  if (p == stop) return stop;
  const void* lf = std::memchr(p, '\n', static_cast<size_t>(stop - p));
  return lf ? static_cast<const char*>(lf) : stop;
}

// Elements of a comma-separated list value (RFC 9110 5.6.1), OWS trimmed. Commas inside a
// quoted-string do not separate. Empty elements are returned: callers skip them, as the
// RFC asks recipients to.
class ListElements {
 public:
  explicit ListElements(std::string_view value) : rest_(value) {}

  bool next(std::string_view& element) {
    if (done_) return false;
    size_t i = 0;
    bool quoted = false;
    for (; i < rest_.size(); ++i) {
      const char c = rest_[i];
      if (quoted) {
        if (c == '\\') ++i;
        else if (c == '"') quoted = false;
      } else if (c == '"') {
        quoted = true;
      } else if (c == ',') {
        break;
      }
    }
    if (i >= rest_.size()) {
      element = trim_ows(rest_);
      done_ = true;
    } else {
      element = trim_ows(rest_.substr(0, i));
      rest_.remove_prefix(i + 1);
    }
    return true;
  }

 private:
  std::string_view rest_;
  bool done_ = false;
};

// quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE, starting at s[i]; returns the
// index after the closing quote, or npos.
size_t skip_quoted_string(std::string_view s, size_t i) {
  if (i >= s.size() || s[i] != '"') return std::string_view::npos;
  for (++i; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '"') return i + 1;
    if (c == '\\') {
      if (++i >= s.size() || !chars::is(s[i], chars::kFieldValue)) return std::string_view::npos;
    } else if (!chars::is(c, chars::kQdtext)) {
      return std::string_view::npos;
    }
  }
  return std::string_view::npos;
}

// What follows a transfer coding's name: *( OWS ";" OWS [ token BWS "=" BWS ( token /
// quoted-string ) ] ) (RFC 9110 5.6.6, 10.1.4). `s` starts at the first ';'.
bool valid_parameters(std::string_view s) {
  size_t i = 0;
  auto skip_ows = [&] {
    while (i < s.size() && is_ows(s[i])) ++i;
  };
  while (true) {
    skip_ows();
    if (i == s.size()) return true;
    if (s[i] != ';') return false;
    ++i;
    skip_ows();
    if (i == s.size() || s[i] == ';') continue;  // empty parameter
    const size_t name_begin = i;
    while (i < s.size() && is_tchar(s[i])) ++i;
    if (i == name_begin) return false;
    skip_ows();
    if (i == s.size() || s[i] != '=') return false;
    ++i;
    skip_ows();
    if (i < s.size() && s[i] == '"') {
      i = skip_quoted_string(s, i);
      if (i == std::string_view::npos) return false;
    } else {
      const size_t value = i;
      while (i < s.size() && is_tchar(s[i])) ++i;
      if (i == value) return false;
    }
  }
}

// authority = uri-host [ ":" port ] without userinfo (RFC 9110 4.2.4 deprecates it in http
// URIs and a recipient should treat it as an error). The host is an IP-literal in brackets
// or a reg-name (which covers IPv4 addresses); the port, when present, is at most 65535.
bool valid_authority(std::string_view s, bool require_port) {
  size_t i = 0;
  if (!s.empty() && s[0] == '[') {
    const size_t close = s.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    for (size_t j = 1; j < close; ++j) {
      if (!chars::is(s[j], chars::kRegName) && s[j] != ':') return false;
    }
    i = close + 1;
  } else {
    while (i < s.size() && s[i] != ':') {
      if (s[i] == '%') {
        if (i + 2 >= s.size() || !chars::is_hex(s[i + 1]) || !chars::is_hex(s[i + 2])) return false;
        i += 3;
        continue;
      }
      if (!chars::is(s[i], chars::kRegName)) return false;
      ++i;
    }
    if (i == 0) return false;  // an http URI with an empty host is invalid (RFC 9110 4.2.1)
  }
  if (i == s.size()) return !require_port;
  if (s[i] != ':') return false;
  std::string_view port = s.substr(i + 1);
  if (port.empty()) return !require_port;
  if (port.size() > 5) return false;
  uint32_t value = 0;
  for (char c : port) {
    if (!is_digit(c)) return false;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  return value <= 65535;
}

Method classify_method(std::string_view m) {
  switch (m.size()) {
    case 3:
      if (m == "GET") return Method::Get;
      if (m == "PUT") return Method::Put;
      break;
    case 4:
      if (m == "HEAD") return Method::Head;
      if (m == "POST") return Method::Post;
      break;
    case 5:
      if (m == "TRACE") return Method::Trace;
      if (m == "PATCH") return Method::Patch;
      break;
    case 6:
      if (m == "DELETE") return Method::Delete;
      break;
    case 7:
      if (m == "CONNECT") return Method::Connect;
      if (m == "OPTIONS") return Method::Options;
      break;
    default:
      break;
  }
  return Method::Other;
}

FieldId classify_field(std::string_view name) {
  switch (name.size()) {
    case 2:
      if (equals_ignore_case(name, "te")) return FieldId::Te;
      break;
    case 4:
      if (equals_ignore_case(name, "host")) return FieldId::Host;
      break;
    case 6:
      if (equals_ignore_case(name, "expect")) return FieldId::Expect;
      break;
    case 7:
      if (equals_ignore_case(name, "trailer")) return FieldId::Trailer;
      if (equals_ignore_case(name, "upgrade")) return FieldId::Upgrade;
      break;
    case 10:
      if (equals_ignore_case(name, "connection")) return FieldId::Connection;
      if (equals_ignore_case(name, "keep-alive")) return FieldId::KeepAlive;
      break;
    case 14:
      if (equals_ignore_case(name, "content-length")) return FieldId::ContentLength;
      break;
    case 16:
      if (equals_ignore_case(name, "proxy-connection")) return FieldId::ProxyConnection;
      break;
    case 17:
      if (equals_ignore_case(name, "transfer-encoding")) return FieldId::TransferEncoding;
      break;
    default:
      break;
  }
  return FieldId::Other;
}

// RFC 9110 7.6.1: fields that only ever describe one connection.
bool always_hop_by_hop(FieldId id) {
  switch (id) {
    case FieldId::Connection:
    case FieldId::KeepAlive:
    case FieldId::ProxyConnection:
    case FieldId::Te:
    case FieldId::Trailer:
    case FieldId::TransferEncoding:
    case FieldId::Upgrade:
      return true;
    default:
      return false;
  }
}

// HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 2.3).
Error parse_version(std::string_view v, Version& out) {
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || !is_digit(v[5]) || v[6] != '.' || !is_digit(v[7])) {
    return Error::BadVersion;
  }
  if (v[5] != '1' || (v[7] != '0' && v[7] != '1')) return Error::VersionNotSupported;
  out = v[7] == '1' ? Version::Http11 : Version::Http10;
  return Error::None;
}

// ---- request line ---------------------------------------------------------------------

// Sorts the target into its form and finds the authority and path in it (RFC 9112 3.2).
Error parse_target(RequestHead& h) {
  const std::string_view t = h.target;
  if (h.method_id == Method::Connect) {
    // CONNECT takes authority-form only, and the port is how the tunnel is reached.
    if (t[0] == '/' || t == "*" || t.find("://") != std::string_view::npos) return Error::TargetFormNotAllowed;
    if (!valid_authority(t, true)) return Error::BadTarget;
    h.form = TargetForm::Authority;
    h.authority = t;
    return Error::None;
  }
  if (t[0] == '/') {
    h.form = TargetForm::Origin;
    h.path = t.substr(0, t.find('?'));
    return Error::None;
  }
  if (t == "*") {
    if (h.method_id != Method::Options) return Error::TargetFormNotAllowed;
    h.form = TargetForm::Asterisk;
    return Error::None;
  }
  // absolute-form: scheme "://" authority path-abempty [ "?" query ]
  auto is_alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  size_t i = 0;
  if (is_alpha(t[0])) {
    i = 1;
    while (i < t.size() && (is_alpha(t[i]) || is_digit(t[i]) || t[i] == '+' || t[i] == '-' || t[i] == '.')) ++i;
  }
  if (i > 0 && t.substr(i, 3) == "://") {
    const std::string_view scheme = t.substr(0, i);
    if (!equals_ignore_case(scheme, "http") && !equals_ignore_case(scheme, "https")) return Error::BadTarget;
    const std::string_view rest = t.substr(i + 3);
    const size_t authority_end = std::min(rest.find('/'), rest.find('?'));
    const std::string_view authority = rest.substr(0, authority_end);
    if (!valid_authority(authority, false)) return Error::BadTarget;
    h.form = TargetForm::Absolute;
    h.authority = authority;
    if (authority_end == std::string_view::npos || rest[authority_end] == '?') {
      h.path = "/";  // an empty path stands for "/" (RFC 9110 4.2.3)
    } else {
      const std::string_view path_and_query = rest.substr(authority_end);
      h.path = path_and_query.substr(0, path_and_query.find('?'));
    }
    return Error::None;
  }
  // A bare authority is authority-form, which only CONNECT may use; anything else is no URI.
  return valid_authority(t, true) ? Error::TargetFormNotAllowed : Error::BadTarget;
}

// request-line = method SP request-target SP HTTP-version, with exactly one SP each time
// (RFC 9112 3: a recipient may split on other whitespace, which is what lets "GET\t/" or
// "GET  /" mean different things to different parsers, so this one does not).
Error parse_request_line(std::string_view line, RequestHead& h) {
  size_t i = 0;
  while (i < line.size() && is_tchar(line[i])) ++i;
  if (i == line.size()) return Error::BadRequestLine;  // nothing after the method
  if (i == 0) return is_ows(line[0]) ? Error::BadRequestLine : Error::BadMethod;
  if (line[i] != ' ') return line[i] == '\t' ? Error::BadRequestLine : Error::BadMethod;
  h.method = line.substr(0, i);
  h.method_id = classify_method(h.method);

  const size_t target_begin = i + 1;
  size_t j = target_begin;
  for (; j < line.size(); ++j) {
    const char c = line[j];
    if (c == ' ' || c == '\t') break;
    if (!chars::is(c, chars::kTarget)) return Error::BadTarget;
  }
  if (j == target_begin || j == line.size() || line[j] == '\t') return Error::BadRequestLine;
  h.target = line.substr(target_begin, j - target_begin);

  const std::string_view version = line.substr(j + 1);
  if (version.empty() || version.find_first_of(" \t") != std::string_view::npos) return Error::BadRequestLine;
  if (Error e = parse_version(version, h.version); e != Error::None) return e;
  return parse_target(h);
}

// ---- field lines ----------------------------------------------------------------------

// field-line = field-name ":" OWS field-value OWS (RFC 9112 5). `first` tells apart
// whitespace after the start line (RFC 9112 2.2) from obsolete folding.
Error parse_field_line(std::string_view line, bool first, Field& f) {
  if (is_ows(line[0])) return first ? Error::SpaceAfterStartLine : Error::ObsFold;
  size_t i = 0;
  while (i < line.size() && is_tchar(line[i])) ++i;
  if (i == line.size()) return Error::MissingColon;
  if (line[i] != ':') {
    if (is_ows(line[i])) {
      size_t j = i;
      while (j < line.size() && is_ows(line[j])) ++j;
      if (j < line.size() && line[j] == ':') return Error::SpaceBeforeColon;
    }
    return Error::BadFieldName;
  }
  if (i == 0) return Error::BadFieldName;
  const std::string_view value = line.substr(i + 1);
  for (char c : value) {
    if (!chars::is(c, chars::kFieldValue)) return Error::BadFieldValue;
  }
  f.name = line.substr(0, i);
  f.value = trim_ows(value);
  f.id = classify_field(f.name);
  f.hop_by_hop = always_hop_by_hop(f.id);
  return Error::None;
}

// `section` holds the field lines, each ending with CRLF (the scanner made sure of it, and
// of their number), without the final empty line.
Error parse_fields(std::string_view section, std::vector<Field>& fields) {
  fields.clear();
  size_t p = 0;
  while (p < section.size()) {
    const size_t cr = section.find('\r', p);
    assert(cr != std::string_view::npos && cr + 1 < section.size() && section[cr + 1] == '\n');
    Field f;
    if (Error e = parse_field_line(section.substr(p, cr - p), p == 0, f); e != Error::None) return e;
    fields.push_back(f);
    p = cr + 2;
  }
  return Error::None;
}

// ---- framing and connection semantics -------------------------------------------------

struct TransferCodings {
  uint32_t count = 0;
  uint32_t chunked = 0;
  bool last_is_chunked = false;
  bool others = false;
};

// Combines every Transfer-Encoding field line into one list (RFC 9110 5.3).
Error read_transfer_codings(const std::vector<Field>& fields, TransferCodings& out) {
  for (const Field& f : fields) {
    if (f.id != FieldId::TransferEncoding) continue;
    ListElements list(f.value);
    std::string_view element;
    while (list.next(element)) {
      if (element.empty()) continue;
      const size_t semi = element.find(';');
      const std::string_view coding = trim_ows(element.substr(0, semi));
      if (!is_token(coding)) return Error::BadTransferEncoding;
      const bool chunked = equals_ignore_case(coding, "chunked");
      if (semi != std::string_view::npos) {
        // chunked takes no parameters (RFC 9112 7).
        if (chunked || !valid_parameters(element.substr(semi))) return Error::BadTransferEncoding;
      }
      ++out.count;
      if (chunked) ++out.chunked;
      else out.others = true;
      out.last_is_chunked = chunked;
    }
  }
  if (out.count == 0) return Error::BadTransferEncoding;
  // RFC 9112 6.1: a sender MUST NOT apply chunked more than once.
  if (out.chunked > 1) return Error::ChunkedTwice;
  return Error::None;
}

// Content-Length = 1*DIGIT. Several field lines, or a list in one, are accepted only when
// every value is the same number (RFC 9110 8.6), which then stands for them all.
Error read_content_length(const std::vector<Field>& fields, const Limits& limits, uint64_t& out) {
  bool seen = false;
  for (const Field& f : fields) {
    if (f.id != FieldId::ContentLength) continue;
    ListElements list(f.value);
    std::string_view element;
    while (list.next(element)) {
      if (element.empty() || !std::all_of(element.begin(), element.end(), is_digit)) {
        return Error::BadContentLength;
      }
      uint64_t value = 0;
      for (char c : element) {
        const auto digit = static_cast<uint64_t>(c - '0');
        if (value > limits.max_content_length / 10) return Error::ContentLengthTooLarge;
        value *= 10;
        if (digit > limits.max_content_length - value) return Error::ContentLengthTooLarge;
        value += digit;
      }
      if (seen && value != out) return Error::ConflictingContentLength;
      seen = true;
      out = value;
    }
  }
  return Error::None;
}

struct ConnectionOptions {
  bool close = false;
  bool keep_alive = false;
  bool upgrade = false;
  bool names_other_fields = false;
};

// Connection = #connection-option, each a token (RFC 9110 7.6.1). Options other than close,
// keep-alive and upgrade name fields meant for this hop only: mark them. Host and
// Content-Length are never dropped that way: a client asking a proxy to remove them is
// trying to change what the next hop understands the message to be.
Error read_connection(std::vector<Field>& fields, const Limits& limits, ConnectionOptions& out) {
  uint32_t count = 0;
  for (const Field& f : fields) {
    if (f.id != FieldId::Connection) continue;
    ListElements list(f.value);
    std::string_view option;
    while (list.next(option)) {
      if (option.empty()) continue;
      if (!is_token(option) || ++count > limits.max_connection_options) return Error::BadConnection;
      if (equals_ignore_case(option, "close")) out.close = true;
      else if (equals_ignore_case(option, "keep-alive")) out.keep_alive = true;
      else if (equals_ignore_case(option, "upgrade")) out.upgrade = true;
      else out.names_other_fields = true;
    }
  }
  if (!out.names_other_fields) return Error::None;
  for (Field& target : fields) {
    if (target.hop_by_hop || target.id == FieldId::Host || target.id == FieldId::ContentLength) continue;
    for (const Field& f : fields) {
      if (f.id != FieldId::Connection) continue;
      ListElements list(f.value);
      std::string_view option;
      while (!target.hop_by_hop && list.next(option)) {
        if (equals_ignore_case(option, target.name)) target.hop_by_hop = true;
      }
    }
  }
  return Error::None;
}

Error interpret_request(RequestHead& h, const Limits& limits) {
  const Field* host = nullptr;
  uint32_t hosts = 0;
  bool has_te = false, has_cl = false, has_upgrade = false, has_expect = false;
  for (const Field& f : h.fields) {
    switch (f.id) {
      case FieldId::Host:
        host = &f;
        ++hosts;
        break;
      case FieldId::TransferEncoding: has_te = true; break;
      case FieldId::ContentLength: has_cl = true; break;
      case FieldId::Upgrade: has_upgrade = true; break;
      case FieldId::Expect: has_expect = true; break;
      default: break;
    }
  }

  // Framing first: these are the smuggling vectors (RFC 9112 6.1, 6.3).
  if (has_te) {
    if (h.version == Version::Http10) return Error::TransferEncodingInHttp10;
    if (has_cl) return Error::TransferEncodingWithContentLength;
    TransferCodings codings;
    if (Error e = read_transfer_codings(h.fields, codings); e != Error::None) return e;
    if (!codings.last_is_chunked) return Error::TransferCodingNotChunked;
    // The proxy re-frames bodies itself and implements no other coding (RFC 9112 6.1: 501).
    if (codings.others) return Error::UnsupportedTransferCoding;
    h.framing = Framing::Chunked;
  } else if (has_cl) {
    if (Error e = read_content_length(h.fields, limits, h.content_length); e != Error::None) return e;
    h.framing = Framing::Length;
  } else {
    h.framing = Framing::None;
  }

  // Host (RFC 9112 3.2).
  if (hosts > 1) return Error::DuplicateHost;
  if (hosts == 0 && h.version == Version::Http11) return Error::MissingHost;
  if (host) {
    if (!host->value.empty() && !valid_authority(host->value, false)) return Error::BadHost;
    h.host_field = host->value;
    h.has_host_field = true;
    if (h.form != TargetForm::Absolute && h.form != TargetForm::Authority) h.authority = host->value;
  }

  ConnectionOptions options;
  if (Error e = read_connection(h.fields, limits, options); e != Error::None) return e;
  h.keep_alive = h.version == Version::Http11 ? !options.close : options.keep_alive && !options.close;
  // An HTTP/1.0 request's Upgrade is ignored (RFC 9110 7.8).
  h.upgrade = h.version == Version::Http11 && options.upgrade && has_upgrade;

  if (has_expect) {
    bool continue_seen = false;
    for (const Field& f : h.fields) {
      if (f.id != FieldId::Expect) continue;
      ListElements list(f.value);
      std::string_view expectation;
      while (list.next(expectation)) {
        if (expectation.empty()) continue;
        if (!equals_ignore_case(expectation, "100-continue")) return Error::ExpectationFailed;
        continue_seen = true;
      }
    }
    // RFC 9110 10.1.1: 100-continue in an HTTP/1.0 request is ignored.
    h.expect_continue = continue_seen && h.version == Version::Http11;
  }
  return Error::None;
}

// ---- responses ------------------------------------------------------------------------

// status-line = HTTP-version SP status-code SP [ reason-phrase ]. A missing SP after the
// code is accepted: servers send "HTTP/1.1 200" and nothing is ambiguous about it.
Error parse_status_line(std::string_view line, ResponseHead& h) {
  const size_t sp = line.find(' ');
  if (sp == std::string_view::npos) return Error::BadStatusLine;
  if (Error e = parse_version(line.substr(0, sp), h.version); e != Error::None) return e;
  const std::string_view rest = line.substr(sp + 1);
  if (rest.size() < 3 || !is_digit(rest[0]) || !is_digit(rest[1]) || !is_digit(rest[2])) return Error::BadStatusLine;
  if (rest.size() > 3) {
    if (rest[3] != ' ') return Error::BadStatusLine;
    h.reason = rest.substr(4);
    for (char c : h.reason) {
      if (!chars::is(c, chars::kFieldValue)) return Error::BadStatusLine;
    }
  }
  const int code = (rest[0] - '0') * 100 + (rest[1] - '0') * 10 + (rest[2] - '0');
  if (code < 100 || code > 599) return Error::BadStatusCode;
  h.status = static_cast<uint16_t>(code);
  return Error::None;
}

Error interpret_response(ResponseHead& h, Method request_method, const Limits& limits) {
  bool has_te = false, has_cl = false;
  for (const Field& f : h.fields) {
    if (f.id == FieldId::TransferEncoding) has_te = true;
    if (f.id == FieldId::ContentLength) has_cl = true;
  }
  ConnectionOptions options;
  if (Error e = read_connection(h.fields, limits, options); e != Error::None) return e;

  // RFC 9112 6.3, in its order.
  const uint16_t s = h.status;
  if (request_method == Method::Head || (s >= 100 && s < 200 && s != 101) || s == 204 || s == 304) {
    h.framing = Framing::None;
  } else if (s == 101 || (request_method == Method::Connect && s >= 200 && s < 300)) {
    h.framing = Framing::Tunnel;
  } else if (has_te) {
    // RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 message means faulty framing.
    if (h.version == Version::Http10) return Error::TransferEncodingInHttp10;
    TransferCodings codings;
    if (Error e = read_transfer_codings(h.fields, codings); e != Error::None) return e;
    h.framing = codings.last_is_chunked ? Framing::Chunked : Framing::UntilClose;
    h.transfer_codings_besides_chunked = codings.others;
  } else if (has_cl) {
    if (Error e = read_content_length(h.fields, limits, h.content_length); e != Error::None) return e;
    h.framing = Framing::Length;
  } else {
    h.framing = Framing::UntilClose;
  }

  const bool version_allows = h.version == Version::Http11 ? !options.close : options.keep_alive && !options.close;
  h.keep_alive = version_allows && h.framing != Framing::UntilClose && h.framing != Framing::Tunnel &&
                 !(has_te && has_cl);
  return Error::None;
}

template <typename Head>
void clear_keeping_capacity(Head& head) {
  std::vector<Field> fields = std::move(head.fields);
  fields.clear();
  head = Head{};
  head.fields = std::move(fields);
}

}  // namespace

// ---- the scanner ----------------------------------------------------------------------

namespace detail {

ParseResult HeadScanner::scan(std::string_view buffer, bool request, const Limits& limits) {
  const char* b = buffer.data();
  const size_t n = buffer.size();
  auto fail = [this](Error e) {
    phase = Phase::Failed;
    error = e;
    return ParseResult{ParseStatus::Error, e, 0};
  };
  // The caller may only hand over the same bytes again, possibly more of them.
  assert(phase == Phase::Failed || n >= pos);

  for (;;) {
    switch (phase) {
      case Phase::Done:
        return {ParseStatus::Done, Error::None, pos};
      case Phase::Failed:
        return {ParseStatus::Error, error, 0};

      case Phase::LeadingEmpty: {
        // RFC 9112 2.2: a server SHOULD ignore at least one empty line before a request.
        if (request) {
          if (pos >= n) return {};
          if (b[pos] == '\n') return fail(Error::BareLf);
          if (b[pos] == '\r') {
            if (pos + 1 >= n) return {};
            if (b[pos + 1] != '\n') return fail(Error::BareCr);
            if (++empty_lines > limits.max_leading_empty_lines) return fail(Error::TooManyEmptyLines);
            pos += 2;
            break;
          }
        }
        start_line_begin = line_begin = method_cursor = pos;
        phase = Phase::StartLine;
        break;
      }

      case Phase::StartLine: {
        // The line may hold max_start_line bytes before its CR: a byte beyond that without a
        // line break is an overflow, found at the same point however the bytes arrive.
        const size_t limit = size_t{start_line_begin} + limits.max_start_line + 1;
        const size_t window = std::min(n, limit);
        if (request && !method_ended) {
          // Refuse what is not HTTP at all (a TLS hello, a binary protocol) at its first
          // byte that cannot be in a method, instead of waiting for a line break.
          size_t c = method_cursor;
          while (c < window && is_tchar(b[c])) ++c;
          method_cursor = static_cast<uint32_t>(c);
          if (c < window) {
            if (is_ows(b[c])) method_ended = true;
            else if (b[c] != '\r' && b[c] != '\n') return fail(Error::BadMethod);
          }
        }
        const char* brk = find_line_break(b + pos, b + window);
        if (brk == b + window) {
          if (window < limit) {
            pos = static_cast<uint32_t>(window);
            return {};
          }
          if (!request || !method_ended) return fail(Error::StartLineTooLong);
          // 414 when the target is what overflows: after it there is no room left for more
          // than a version. A long method, or junk after the version, is a plain 400.
          const char* sep = std::find_if(b + method_cursor + 1, b + limit, [](char ch) { return is_ows(ch); });
          const bool target_overflows = sep == b + limit || (b + limit) - (sep + 1) <= 8;
          return fail(target_overflows ? Error::UriTooLong : Error::StartLineTooLong);
        }
        const size_t p = static_cast<size_t>(brk - b);
        if (*brk == '\n') return fail(Error::BareLf);
        if (p + 1 >= n) {
          pos = static_cast<uint32_t>(p);
          return {};
        }
        if (b[p + 1] != '\n') return fail(Error::BareCr);
        start_line_end = static_cast<uint32_t>(p);
        fields_begin = line_begin = pos = static_cast<uint32_t>(p + 2);
        phase = Phase::Fields;
        break;
      }

      case Phase::Fields: {
        // Every byte of the header section, final CRLF included, lies below `limit`.
        const size_t limit = size_t{fields_begin} + limits.max_header_section;
        const size_t window = std::min(n, limit);
        const char* brk = find_line_break(b + pos, b + window);
        if (brk == b + window) {
          if (window == limit) return fail(Error::HeaderSectionTooLarge);
          pos = static_cast<uint32_t>(window);
          return {};
        }
        const size_t p = static_cast<size_t>(brk - b);
        if (*brk == '\n') return fail(Error::BareLf);
        if (p + 1 >= limit) return fail(Error::HeaderSectionTooLarge);
        if (p + 1 >= n) {
          pos = static_cast<uint32_t>(p);
          return {};
        }
        if (b[p + 1] != '\n') return fail(Error::BareCr);
        pos = static_cast<uint32_t>(p + 2);
        if (p == line_begin) {
          phase = Phase::Done;
          return {ParseStatus::Done, Error::None, pos};
        }
        if (++field_count > limits.max_fields) return fail(Error::TooManyFields);
        line_begin = pos;
        break;
      }
    }
  }
}

}  // namespace detail

// ---- parsers --------------------------------------------------------------------------

ParseResult RequestParser::feed(std::string_view buffer, RequestHead& head) {
  ParseResult r = scanner_.scan(buffer, true, limits_);
  if (r.status != ParseStatus::Done) return r;
  clear_keeping_capacity(head);
  const detail::HeadScanner& s = scanner_;
  Error e = parse_request_line(buffer.substr(s.start_line_begin, s.start_line_end - s.start_line_begin), head);
  if (e == Error::None) e = parse_fields(buffer.substr(s.fields_begin, s.pos - 2 - s.fields_begin), head.fields);
  if (e == Error::None) e = interpret_request(head, limits_);
  if (e != Error::None) {
    scanner_.phase = detail::HeadScanner::Phase::Failed;
    scanner_.error = e;
    return {ParseStatus::Error, e, 0};
  }
  return r;
}

ParseResult ResponseParser::feed(std::string_view buffer, Method request_method, ResponseHead& head) {
  ParseResult r = scanner_.scan(buffer, false, limits_);
  if (r.status != ParseStatus::Done) return r;
  clear_keeping_capacity(head);
  const detail::HeadScanner& s = scanner_;
  Error e = parse_status_line(buffer.substr(s.start_line_begin, s.start_line_end - s.start_line_begin), head);
  if (e == Error::None) e = parse_fields(buffer.substr(s.fields_begin, s.pos - 2 - s.fields_begin), head.fields);
  if (e == Error::None) e = interpret_response(head, request_method, limits_);
  if (e != Error::None) {
    scanner_.phase = detail::HeadScanner::Phase::Failed;
    scanner_.error = e;
    return {ParseStatus::Error, e, 0};
  }
  return r;
}

const Field* find(const std::vector<Field>& fields, FieldId id) {
  for (const Field& f : fields) {
    if (f.id == id) return &f;
  }
  return nullptr;
}

bool equals_ignore_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// ---- names ----------------------------------------------------------------------------

int status_of(Error e) {
  switch (e) {
    case Error::UriTooLong: return 414;
    case Error::HeaderSectionTooLarge:
    case Error::TooManyFields:
    case Error::TrailerSectionTooLarge: return 431;
    case Error::ExpectationFailed: return 417;
    case Error::UnsupportedTransferCoding: return 501;
    case Error::VersionNotSupported: return 505;
    default: return 400;
  }
}

const char* to_string(Error e) {
  switch (e) {
    case Error::None: return "no error";
    case Error::TooManyEmptyLines: return "too many empty lines before the request line";
    case Error::BadMethod: return "method is not a token";
    case Error::BadRequestLine: return "request line is not method SP target SP version";
    case Error::BadTarget: return "invalid request target";
    case Error::TargetFormNotAllowed: return "request target form not allowed with this method";
    case Error::BadVersion: return "malformed HTTP version";
    case Error::VersionNotSupported: return "HTTP version not supported";
    case Error::UriTooLong: return "request target too long";
    case Error::StartLineTooLong: return "start line too long";
    case Error::BadStatusLine: return "malformed status line";
    case Error::BadStatusCode: return "status code outside 100..599";
    case Error::BareCr: return "CR not followed by LF";
    case Error::BareLf: return "LF without CR";
    case Error::HeaderSectionTooLarge: return "header section too large";
    case Error::TooManyFields: return "too many header fields";
    case Error::SpaceAfterStartLine: return "whitespace before the first header field";
    case Error::ObsFold: return "obsolete line folding in a header field";
    case Error::MissingColon: return "header field line without a colon";
    case Error::BadFieldName: return "invalid header field name";
    case Error::SpaceBeforeColon: return "whitespace between header field name and colon";
    case Error::BadFieldValue: return "control character in a header field value";
    case Error::TransferEncodingWithContentLength: return "both Transfer-Encoding and Content-Length";
    case Error::TransferEncodingInHttp10: return "Transfer-Encoding in an HTTP/1.0 message";
    case Error::BadTransferEncoding: return "malformed Transfer-Encoding";
    case Error::TransferCodingNotChunked: return "final transfer coding is not chunked";
    case Error::ChunkedTwice: return "chunked transfer coding applied more than once";
    case Error::UnsupportedTransferCoding: return "transfer coding other than chunked";
    case Error::BadContentLength: return "malformed Content-Length";
    case Error::ConflictingContentLength: return "differing Content-Length values";
    case Error::ContentLengthTooLarge: return "Content-Length too large";
    case Error::MissingHost: return "HTTP/1.1 request without Host";
    case Error::DuplicateHost: return "more than one Host header field";
    case Error::BadHost: return "malformed Host";
    case Error::BadConnection: return "malformed Connection or too many options";
    case Error::ExpectationFailed: return "unsupported expectation";
    case Error::BadChunkSize: return "malformed chunk size";
    case Error::ChunkSizeTooLarge: return "chunk size too large";
    case Error::BadChunkExtension: return "malformed chunk extension";
    case Error::ChunkLineTooLong: return "chunk size line too long";
    case Error::MissingChunkDataCrlf: return "chunk data not followed by CRLF";
    case Error::TrailerSectionTooLarge: return "trailer section too large";
    case Error::TruncatedBody: return "connection closed before the end of the body";
  }
  return "unknown error";
}

const char* name(Error e) {
  switch (e) {
#define HAFRONT_HTTP1_ERROR_NAME(kind) \
  case Error::kind: return #kind;
    HAFRONT_HTTP1_ERROR_NAME(None)
    HAFRONT_HTTP1_ERROR_NAME(TooManyEmptyLines)
    HAFRONT_HTTP1_ERROR_NAME(BadMethod)
    HAFRONT_HTTP1_ERROR_NAME(BadRequestLine)
    HAFRONT_HTTP1_ERROR_NAME(BadTarget)
    HAFRONT_HTTP1_ERROR_NAME(TargetFormNotAllowed)
    HAFRONT_HTTP1_ERROR_NAME(BadVersion)
    HAFRONT_HTTP1_ERROR_NAME(VersionNotSupported)
    HAFRONT_HTTP1_ERROR_NAME(UriTooLong)
    HAFRONT_HTTP1_ERROR_NAME(StartLineTooLong)
    HAFRONT_HTTP1_ERROR_NAME(BadStatusLine)
    HAFRONT_HTTP1_ERROR_NAME(BadStatusCode)
    HAFRONT_HTTP1_ERROR_NAME(BareCr)
    HAFRONT_HTTP1_ERROR_NAME(BareLf)
    HAFRONT_HTTP1_ERROR_NAME(HeaderSectionTooLarge)
    HAFRONT_HTTP1_ERROR_NAME(TooManyFields)
    HAFRONT_HTTP1_ERROR_NAME(SpaceAfterStartLine)
    HAFRONT_HTTP1_ERROR_NAME(ObsFold)
    HAFRONT_HTTP1_ERROR_NAME(MissingColon)
    HAFRONT_HTTP1_ERROR_NAME(BadFieldName)
    HAFRONT_HTTP1_ERROR_NAME(SpaceBeforeColon)
    HAFRONT_HTTP1_ERROR_NAME(BadFieldValue)
    HAFRONT_HTTP1_ERROR_NAME(TransferEncodingWithContentLength)
    HAFRONT_HTTP1_ERROR_NAME(TransferEncodingInHttp10)
    HAFRONT_HTTP1_ERROR_NAME(BadTransferEncoding)
    HAFRONT_HTTP1_ERROR_NAME(TransferCodingNotChunked)
    HAFRONT_HTTP1_ERROR_NAME(ChunkedTwice)
    HAFRONT_HTTP1_ERROR_NAME(UnsupportedTransferCoding)
    HAFRONT_HTTP1_ERROR_NAME(BadContentLength)
    HAFRONT_HTTP1_ERROR_NAME(ConflictingContentLength)
    HAFRONT_HTTP1_ERROR_NAME(ContentLengthTooLarge)
    HAFRONT_HTTP1_ERROR_NAME(MissingHost)
    HAFRONT_HTTP1_ERROR_NAME(DuplicateHost)
    HAFRONT_HTTP1_ERROR_NAME(BadHost)
    HAFRONT_HTTP1_ERROR_NAME(BadConnection)
    HAFRONT_HTTP1_ERROR_NAME(ExpectationFailed)
    HAFRONT_HTTP1_ERROR_NAME(BadChunkSize)
    HAFRONT_HTTP1_ERROR_NAME(ChunkSizeTooLarge)
    HAFRONT_HTTP1_ERROR_NAME(BadChunkExtension)
    HAFRONT_HTTP1_ERROR_NAME(ChunkLineTooLong)
    HAFRONT_HTTP1_ERROR_NAME(MissingChunkDataCrlf)
    HAFRONT_HTTP1_ERROR_NAME(TrailerSectionTooLarge)
    HAFRONT_HTTP1_ERROR_NAME(TruncatedBody)
#undef HAFRONT_HTTP1_ERROR_NAME
  }
  return "Unknown";
}

const char* to_string(Framing f) {
  switch (f) {
    case Framing::None: return "none";
    case Framing::Length: return "length";
    case Framing::Chunked: return "chunked";
    case Framing::UntilClose: return "until-close";
    case Framing::Tunnel: return "tunnel";
  }
  return "unknown";
}

const char* to_string(Version v) { return v == Version::Http10 ? "HTTP/1.0" : "HTTP/1.1"; }

}  // namespace hafront::proxy::http1
