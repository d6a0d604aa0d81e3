// Everything privileged the VIP manager does, behind one narrow interface: netlink
// addresses, link state, raw frames, the conflict probe and socket destruction. The real
// implementation (make_linux_net_ops) talks to the kernel; tests use a recording fake.
#pragma once

#include <boost/asio/io_context.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config_types.h"
#include "vip/frames.h"
#include "vip/vip_types.h"

namespace hafront::vip {

// hafront marks the addresses it adds with this IFA_PROTO value, so a restarted daemon
// can find (and remove) what a crashed one left behind, and never touches other addresses.
inline constexpr uint8_t kAddressProtocol = 0x68;  // 'h'

struct LinkInfo {
  int ifindex = 0;
  std::string name;
  Mac mac{};
  bool up = false;             // administratively up and carrier present
  bool noarp = false;          // IFF_NOARP (lo): no ARP/NA to send
  bool ipv6_disabled = false;  // net.ipv6.conf.IF.disable_ipv6 = 1, or no IPv6 at all
  bool deleted = false;        // a notification that the interface is gone
};

struct MarkedAddress {
  int ifindex = 0;
  std::string ifname;
  config::Cidr cidr;
};

// Notifications from the kernel, delivered on the io_context.
struct NetWatcher {
  std::function<void(int ifindex, const config::Address& address, bool added, bool ours)> address;
  std::function<void(const LinkInfo& link)> link;
  std::function<void()> resync;  // notifications were lost: re-read the state
};

class NetOps {
 public:
  virtual ~NetOps() = default;

  // The interface's index, MAC and state; nullopt with `error` set when it does not exist.
  virtual std::optional<LinkInfo> link(const std::string& ifname, std::string& error) = 0;
  // Adds the address (IPv6 with nodad), marked as hafront's. Empty string on success.
  virtual std::string add_address(int ifindex, const config::Cidr& cidr) = 0;
  // Removes the address; an address already gone counts as success.
  virtual std::string delete_address(int ifindex, const config::Cidr& cidr) = 0;
  // Every address on the node that carries hafront's mark.
  virtual std::vector<MarkedAddress> marked_addresses(std::string& error) = 0;
  // Sends ready-made Ethernet frames out of the interface.
  virtual std::string send_frames(int ifindex, const std::vector<Frame>& frames) = 0;
  // Asks who answers for `address` (ARP probe or DAD solicitation) and listens for `wait`;
  // calls `done` on the io_context with the first other MAC that claimed it, or nullopt.
  virtual void probe(const LinkInfo& link, const config::Address& address, Duration wait,
                     std::function<void(std::optional<Mac> claimant, std::string error)> done) = 0;
  // Destroys every TCP socket whose local address is `address`, except listeners, so
  // their peers get a reset at once. Returns how many, or sets `error`.
  virtual size_t destroy_sockets(const config::Address& address, std::string& error) = 0;
  // Starts delivering kernel notifications to `watcher`.
  virtual void watch(NetWatcher watcher) = 0;
};

// The real thing: libnl-3 route sockets, AF_PACKET, sock_diag. Returns nullptr and sets
// `error` when netlink cannot be opened.
std::unique_ptr<NetOps> make_linux_net_ops(boost::asio::io_context& io, std::string& error);

}  // namespace hafront::vip
