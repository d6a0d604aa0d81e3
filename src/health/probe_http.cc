// The http and https checks: one HTTP/1.1 request per connection (`Connection: close`),
// over Asio's OpenSSL stream for https, parsed by Boost.Beast with the head limited to
// 16 KiB and at most 64 KiB of the body kept (CappedBody): a target that streams a gigabyte
// costs us 64 KiB and one read, then the connection is closed.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/buffers_range.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>

#include "health/probe_impl.h"
#include "health/probe_verdicts.h"

namespace hafront::health::detail {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

// A Beast body that keeps the first kMaxBodyBytes and then stops the read with
// http::error::body_limit, so the caller has the head and the kept prefix and knows the
// body was longer. (Beast's own body_limit refuses a large Content-Length before reading
// any of the body, and string_body reserves Content-Length bytes up front.)
struct CappedBody {
  using value_type = std::string;

  class reader {
   public:
    template <bool isRequest, class Fields>
    reader(http::header<isRequest, Fields>&, value_type& body) : body_(body) {}

    void init(const boost::optional<std::uint64_t>& length, beast::error_code& ec) {
      if (length) body_.reserve(static_cast<size_t>(std::min<std::uint64_t>(*length, kMaxBodyBytes)));
      ec = {};
    }

    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, beast::error_code& ec) {
      ec = {};
      size_t used = 0;
      for (auto b : beast::buffers_range_ref(buffers)) {
        size_t room = kMaxBodyBytes - body_.size();
        size_t n = std::min(room, b.size());
        body_.append(static_cast<const char*>(b.data()), n);
        used += n;
        if (n < b.size()) {
          ec = http::error::body_limit;
          break;
        }
      }
      return used;
    }

    void finish(beast::error_code& ec) { ec = {}; }

   private:
    value_type& body_;
  };
};

enum class Phase { Connect, Handshake, Send, Head, Body };

const char* phase_text(Phase p) {
  switch (p) {
    case Phase::Connect: return "connecting";
    case Phase::Handshake: return "during the TLS handshake";
    case Phase::Send: return "sending the request";
    case Phase::Head: return "waiting for the response head";
    case Phase::Body: return "reading the body";
  }
  return "";
}

bool is_ip_literal(const std::string& name) {
  boost::system::error_code ec;
  asio::ip::make_address(name, ec);
  return !ec;
}

// "example.org:8443" -> "example.org"; "[2001:db8::1]:443" -> "2001:db8::1".
std::string host_without_port(const std::string& host) {
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    return close == std::string::npos ? host : host.substr(1, close - 1);
  }
  size_t colon = host.rfind(':');
  if (colon != std::string::npos && host.find(':') == colon) return host.substr(0, colon);
  return host;
}

// Where the system's CA certificates are, as OpenSSL looks for them: the hashed folder
// ($SSL_CERT_DIR or OpenSSL's default, /etc/ssl/certs on Debian).
std::string system_ca_dir() {
  const char* env = std::getenv(X509_get_default_cert_dir_env());
  return env && *env ? env : X509_get_default_cert_dir();
}

bool has_hashed_certificates(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() == 10 && name[8] == '.' && name[9] == '0') return true;  // 002c0b4f.0
  }
  return false;
}

std::shared_ptr<ssl::context> load_tls_context(const config::TlsOptions& tls, std::string& error) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                   ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  if (!tls.verify) {
    ctx->set_verify_mode(ssl::verify_none);
    return ctx;
  }
  boost::system::error_code ec;
  if (tls.ca_file) {
    ctx->load_verify_file(*tls.ca_file, ec);
    if (ec) {
      error = "cannot load CA file " + *tls.ca_file + ": " + ec.message();
      return nullptr;
    }
  } else if (std::string dir = system_ca_dir(); has_hashed_certificates(dir)) {
    // The hashed folder is read lazily, one issuer at a time during a handshake: loading
    // the whole bundle (set_default_verify_paths) takes 60-250 ms here (OpenSSL 3.0, 140
    // certificates), which the control loop cannot spend.
    ctx->add_verify_path(dir, ec);
  } else {
    ctx->set_default_verify_paths(ec);
  }
  if (ec) {
    error = "cannot load the system CA certificates: " + ec.message();
    return nullptr;
  }
  ctx->set_verify_mode(ssl::verify_peer);
  return ctx;
}

// The client contexts of the https probes, shared by every probe with the same (verify,
// ca_file): a context is built once, not per check, and rebuilt when its CA file changes
// (size or modification time), so a rotated CA is used by the next check without a reload.
// Used from the control thread only.
std::shared_ptr<ssl::context> tls_context(const config::TlsOptions& tls, std::string& error) {
  struct Entry {
    std::shared_ptr<ssl::context> ctx;
    std::filesystem::file_time_type mtime{};
    std::uintmax_t size = 0;
  };
  static std::map<std::pair<bool, std::string>, Entry> cache;
  auto key = std::make_pair(tls.verify, tls.verify ? tls.ca_file.value_or("") : std::string());
  Entry fresh;
  if (tls.verify && tls.ca_file) {
    std::error_code ec;
    fresh.mtime = std::filesystem::last_write_time(*tls.ca_file, ec);
    fresh.size = std::filesystem::file_size(*tls.ca_file, ec);
  }
  auto it = cache.find(key);
  if (it != cache.end() && it->second.mtime == fresh.mtime && it->second.size == fresh.size) return it->second.ctx;
  fresh.ctx = load_tls_context(tls, error);
  if (!fresh.ctx) {
    cache.erase(key);
    return nullptr;
  }
  cache[key] = fresh;
  return fresh.ctx;
}

class HttpProbe final : public ProbeBase {
 public:
  HttpProbe(asio::io_context& io, const config::Check& check, const config::Endpoint& endpoint, ProbeDone done)
      : ProbeBase(io, check, std::move(done)),
        http_(check.http),
        endpoint_(to_asio(endpoint)),
        socket_(io),
        buffer_(kMaxHeadBytes + 4096) {
    host_ = http_.host ? *http_.host : endpoint.str();
    tls_name_ = http_.tls_options.sni ? *http_.tls_options.sni
                                      : (http_.host ? host_without_port(*http_.host) : endpoint.address.str());
    request_line_ = http_.method + " " + http_.path;
  }

 private:
  tcp::socket& socket() { return tls_ ? tls_->next_layer() : socket_; }

  // Runs f on whichever stream carries HTTP: the TLS stream or the plain socket.
  template <class F>
  void with_stream(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(socket_);
    }
  }

  std::shared_ptr<HttpProbe> self() { return std::static_pointer_cast<HttpProbe>(shared_from_this()); }

  void begin() override {
    if (http_.tls) {
      std::string error;
      tls_ctx_ = tls_context(http_.tls_options, error);
      if (!tls_ctx_) return finish_soon(failed(ProbeRun::LocalError, error));
      tls_ = std::make_unique<ssl::stream<tcp::socket>>(io_, *tls_ctx_);
      SSL* ssl = tls_->native_handle();
      // SNI carries a DNS name only (RFC 6066); an IP literal is verified against the
      // certificate's IP addresses instead.
      bool ip = is_ip_literal(tls_name_);
      // (SSL_set_tlsext_host_name() is a macro with a C cast; this is what it expands to.)
      if (!ip) SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, tls_name_.data());
      if (http_.tls_options.verify) {
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        int set = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, tls_name_.c_str())
                     : X509_VERIFY_PARAM_set1_host(param, tls_name_.c_str(), 0);
        if (set != 1) return finish_soon(failed(ProbeRun::LocalError, "cannot verify against name " + quote(tls_name_)));
      }
    }
    req_.method_string(http_.method);
    req_.target(http_.path);
    req_.version(11);
    req_.set(http::field::host, host_);
    req_.set(http::field::user_agent, "hafront-check/" HAFRONT_VERSION);
    req_.set(http::field::connection, "close");
    for (const auto& [name, value] : http_.headers) req_.set(name, value);

    phase_ = Phase::Connect;
    socket().async_connect(endpoint_, [self = self()](boost::system::error_code ec) {
      if (!self->live()) return;
      if (ec) return self->finish(failed(ProbeRun::Unreachable, connect_failure(ec)));
      self->connected();
    });
  }

  void connected() {
    if (!tls_) return send();
    phase_ = Phase::Handshake;
    tls_->async_handshake(ssl::stream_base::client, [self = self()](boost::system::error_code ec) {
      if (!self->live()) return;
      if (ec) return self->finish(failed(ProbeRun::Unreachable, self->tls_failure(ec)));
      self->send();
    });
  }

  std::string tls_failure(const boost::system::error_code& ec) {
    std::string why;
    long vr = SSL_get_verify_result(tls_->native_handle());
    if (http_.tls_options.verify && vr != X509_V_OK) {
      why = std::string("certificate verify failed (") + X509_verify_cert_error_string(vr) + ")";
    } else if (ec == asio::error::eof || ec == ssl::error::stream_truncated) {
      why = "the server closed the connection";
    } else if (ec == asio::error::connection_reset) {
      why = "connection reset by the server";
    } else if (ec.category() == asio::error::get_ssl_category()) {
      const char* r = ERR_reason_error_string(static_cast<unsigned long>(ec.value()));
      why = r ? r : ec.message();
    } else {
      why = ec.message();
    }
    return "TLS handshake failed: " + why;
  }

  void send() {
    phase_ = Phase::Send;
    with_stream([this](auto& stream) {
      http::async_write(stream, req_, [self = self()](boost::system::error_code ec, size_t) {
        if (!self->live()) return;
        if (ec) return self->finish(failed(ProbeRun::Unreachable, self->io_failure(ec)));
        self->read_head();
      });
    });
  }

  void read_head() {
    phase_ = Phase::Head;
    parser_.emplace();
    parser_->header_limit(kMaxHeadBytes);
    parser_->body_limit(boost::none);  // CappedBody bounds it
    if (http_.method == "HEAD") parser_->skip(true);
    with_stream([this](auto& stream) {
      http::async_read_header(stream, buffer_, *parser_, [self = self()](boost::system::error_code ec, size_t) {
        if (!self->live()) return;
        if (ec) return self->finish(self->read_failure(ec));
        self->read_body();
      });
    });
  }

  void read_body() {
    phase_ = Phase::Body;
    if (parser_->is_done()) return judge(false);
    with_stream([this](auto& stream) {
      http::async_read(stream, buffer_, *parser_, [self = self()](boost::system::error_code ec, size_t) {
        if (!self->live()) return;
        if (ec == http::error::body_limit) return self->judge(true);
        if (ec == ssl::error::stream_truncated && self->parser_->need_eof()) {
          // A body that ends at the close, over TLS, without close_notify: many servers
          // close that way; for a health check the body up to the close is the body.
          boost::system::error_code eof_ec;
          self->parser_->put_eof(eof_ec);
          if (!eof_ec) return self->judge(false);
        }
        if (ec) return self->finish(self->read_failure(ec));
        self->judge(false);
      });
    });
  }

  // A failed write or read that is not about HTTP syntax.
  std::string io_failure(const boost::system::error_code& ec) const {
    std::string where = phase_text(phase_);
    if (ec == asio::error::connection_reset) return "connection reset by the server " + where;
    if (ec == asio::error::broken_pipe) return "server closed the connection " + where;
    if (ec == asio::error::eof || ec == ssl::error::stream_truncated) {
      return phase_ == Phase::Head ? "server closed the connection before answering"
                                   : "server closed the connection " + where;
    }
    return ec.message() + " " + where;
  }

  Observation read_failure(const boost::system::error_code& ec) {
    Observation o;
    o.run = ProbeRun::Unreachable;
    if (ec == http::error::end_of_stream) {
      o.reason = "server closed the connection before answering";
    } else if (ec == http::error::partial_message || ec == http::error::short_read) {
      o.reason = phase_ == Phase::Head ? "server closed the connection in the middle of the response head"
                                       : "server closed the connection in the middle of the body";
    } else if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
      o.reason = "invalid response: head larger than 16 KiB";
    } else if (ec.category() == http::make_error_code(http::error::bad_version).category()) {
      o.reason = "invalid response: " + ec.message();
    } else {
      o.reason = io_failure(ec);
    }
    // Evidence: what the target sent, as far as it was read.
    if (parser_ && parser_->is_header_done()) {
      o.http_status = static_cast<uint16_t>(parser_->get().result_int());
      o.body_excerpt = body_excerpt(parser_->get().body());
    } else {
      auto data = buffer_.cdata();
      o.body_excerpt = body_excerpt(std::string_view(static_cast<const char*>(data.data()), data.size()));
    }
    return o;
  }

  void judge(bool truncated) {
    const auto& msg = parser_->get();
    auto status = static_cast<uint16_t>(msg.result_int());
    Verdict v = judge_http(http_, request_line_, status, msg.body(), truncated);
    Observation o;
    o.ok = v.ok;
    o.run = ProbeRun::Answered;
    o.reason = std::move(v.reason);
    o.http_status = status;
    o.body_excerpt = body_excerpt(msg.body());
    finish(std::move(o));
  }

  void close() override {
    // No TLS close_notify: the check is over and a hung peer must not hold us.
    boost::system::error_code ignored;
    socket().close(ignored);
  }

  void on_deadline() override { finish(timed_out(phase_text(phase_))); }

  config::HttpCheck http_;
  tcp::endpoint endpoint_;
  std::string host_, tls_name_, request_line_;
  std::shared_ptr<ssl::context> tls_ctx_;
  tcp::socket socket_;  // the connection without TLS
  std::unique_ptr<ssl::stream<tcp::socket>> tls_;
  beast::flat_buffer buffer_;
  http::request<http::empty_body> req_;
  std::optional<http::response_parser<CappedBody>> parser_;
  Phase phase_ = Phase::Connect;
};

}  // namespace

std::shared_ptr<ProbeBase> make_http_probe(asio::io_context& io, const config::Check& check,
                                           const config::Endpoint& endpoint, ProbeDone done) {
  return std::make_shared<HttpProbe>(io, check, endpoint, std::move(done));
}

}  // namespace hafront::health::detail
