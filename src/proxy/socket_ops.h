// Socket set-up for the data plane: listeners that share a port among workers and may bind
// an address the node does not hold yet, sockets towards servers, and address conversions.
// Plain system calls, none of which blocks.
#pragma once

#include <sys/socket.h>

#include <optional>
#include <string>

#include "config/config_types.h"

namespace hafront::proxy {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  const sockaddr* get() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }
  int family() const noexcept { return storage.ss_family; }
};

SocketAddress to_socket_address(const config::Endpoint& endpoint) noexcept;
// IPv4-mapped IPv6 addresses come back as IPv4. nullopt for other families.
std::optional<config::Endpoint> to_endpoint(const sockaddr_storage& storage) noexcept;

// A listening socket on `endpoint` for one worker: SO_REUSEPORT (each worker has its own
// socket on the same port, the kernel spreads connections), IP_FREEBIND / IPV6_FREEBIND (a
// VIP can be bound before the node holds it), IPV6_V6ONLY for IPv6. Returns the socket, or
// -1 with `error` set ("bind 192.0.2.1:80: Address already in use").
int open_listener(const config::Endpoint& endpoint, bool nonblocking, int backlog, std::string& error) noexcept;

// A TCP socket towards a server, with the same options as accepted ones. -errno on failure.
int open_server_socket(int family, bool nonblocking) noexcept;

// TCP_NODELAY (the relay forwards what it gets at once; Nagle would only add delay) and
// SO_KEEPALIVE (the kernel's probes find peers that vanished during a quiet session).
void tune_connection(int fd) noexcept;

// SO_LINGER 0: closing fd then resets the connection and drops what is still queued for
// the peer instead of delivering it later. For a server connection whose session ended
// abnormally: a statement the client gave up on (its connection reset, the VIP released,
// the session closed because its server stopped being the writer) must not reach the
// server seconds later when a cut heals and TCP retransmits it.
void abort_on_close(int fd) noexcept;

std::optional<config::Endpoint> peer_endpoint(int fd) noexcept;
std::optional<config::Endpoint> local_endpoint(int fd) noexcept;

// Raises the soft limit on open files towards the hard one, so that `wanted` descriptors
// fit (two per proxied connection). Returns the limit in force afterwards.
uint64_t raise_file_limit(uint64_t wanted) noexcept;

}  // namespace hafront::proxy
