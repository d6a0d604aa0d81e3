#include "control/admin_client.h"

#include <boost/asio.hpp>

namespace hafront::control {

namespace asio = boost::asio;
using stream = asio::local::stream_protocol;

Reply call(const std::string& socket_path, std::string_view command, const boost::json::object& args,
           std::chrono::milliseconds timeout) {
  // The round trip runs as asynchronous operations on a private io_context for at most
  // `timeout`; whatever has not finished by then is cancelled and reported.
  asio::io_context io;
  stream::socket socket(io);
  std::string request = encode_request(command, args);
  std::string reply;
  enum class Stage { Connect, Send, Receive, Done } stage = Stage::Connect;
  boost::system::error_code error;

  socket.async_connect(stream::endpoint(socket_path), [&](boost::system::error_code ec) {
    if (ec) return void(error = ec);
    stage = Stage::Send;
    asio::async_write(socket, asio::buffer(request), [&](boost::system::error_code wec, size_t) {
      if (wec) return void(error = wec);
      stage = Stage::Receive;
      asio::async_read_until(socket, asio::dynamic_buffer(reply, kMaxResponseBytes), '\n',
                             [&](boost::system::error_code rec, size_t) {
                               // EOF after a complete reply without newline is fine too.
                               if (rec && !(rec == asio::error::eof && !reply.empty())) return void(error = rec);
                               stage = Stage::Done;
                             });
    });
  });
  io.run_for(timeout);

  switch (stage) {
    case Stage::Done: {
      size_t nl = reply.find('\n');
      return decode_reply(std::string_view(reply).substr(0, nl));
    }
    case Stage::Connect:
      if (!error) return Reply::failure("timed out connecting to hafrontd at " + socket_path);
      return Reply::failure("cannot reach hafrontd at " + socket_path + ": " + error.message() +
                            " (is the daemon running? is this the right socket?)");
    case Stage::Send:
      return Reply::failure(error ? "cannot send the request: " + error.message()
                                  : std::string("timed out sending the request to hafrontd"));
    case Stage::Receive:
      if (!error) return Reply::failure("timed out waiting for hafrontd's reply");
      if (error == asio::error::eof) return Reply::failure("hafrontd closed the connection without replying");
      if (error == asio::error::not_found) return Reply::failure("the daemon's reply is too large");
      return Reply::failure("cannot read the reply: " + error.message());
  }
  return Reply::failure("unreachable");
}

}  // namespace hafront::control
