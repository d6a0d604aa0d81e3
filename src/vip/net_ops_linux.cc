// NetOps on Linux: libnl-3 for rtnetlink and sock_diag, AF_PACKET for frames.
#include <arpa/inet.h>
#include <linux/if_addr.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/inet_diag.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <net/if.h>
#include <netinet/tcp.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/rtnl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <cstring>
#include <fstream>

#include "vip/net_ops.h"

namespace hafront::vip {
namespace {

namespace asio = boost::asio;

// IFF_LOWER_UP (carrier) lives in <linux/if.h>, which clashes with glibc's <net/if.h>.
constexpr unsigned kIffLowerUp = 1u << 16;

struct NlSockDeleter {
  void operator()(nl_sock* s) const { nl_socket_free(s); }
};
using NlSock = std::unique_ptr<nl_sock, NlSockDeleter>;

struct NlMsgDeleter {
  void operator()(nl_msg* m) const { nlmsg_free(m); }
};
struct RtnlAddrDeleter {
  void operator()(rtnl_addr* a) const { rtnl_addr_put(a); }
};
struct NlAddrDeleter {
  void operator()(nl_addr* a) const { nl_addr_put(a); }
};
struct RtnlLinkDeleter {
  void operator()(rtnl_link* l) const { rtnl_link_put(l); }
};

NlSock connect(int protocol, std::string& error) {
  NlSock s(nl_socket_alloc());
  if (!s) {
    error = "cannot allocate a netlink socket";
    return nullptr;
  }
  if (int err = nl_connect(s.get(), protocol); err < 0) {
    error = std::string("cannot open netlink: ") + nl_geterror(err);
    return nullptr;
  }
  return s;
}

int family_of(const config::Address& a) { return a.is_v6() ? AF_INET6 : AF_INET; }
size_t length_of(const config::Address& a) { return a.is_v6() ? 16 : 4; }

std::optional<config::Address> address_from(const void* data, int family) {
  config::Address a;
  if (family == AF_INET) {
    a.family = config::Address::Family::V4;
    std::memcpy(a.bytes.data(), data, 4);
  } else if (family == AF_INET6) {
    a.family = config::Address::Family::V6;
    std::memcpy(a.bytes.data(), data, 16);
  } else {
    return std::nullopt;
  }
  return a;
}

// The address an RTM_NEWADDR/DELADDR message is about, and whether it carries our mark.
struct ParsedAddress {
  int ifindex;
  config::Cidr cidr;
  bool ours;
};

std::optional<ParsedAddress> parse_address_message(nlmsghdr* hdr) {
  if (hdr->nlmsg_type != RTM_NEWADDR && hdr->nlmsg_type != RTM_DELADDR) return std::nullopt;
  auto* ifa = static_cast<ifaddrmsg*>(nlmsg_data(hdr));
  nlattr* tb[IFA_MAX + 1] = {};
  if (nlmsg_parse(hdr, sizeof(ifaddrmsg), tb, IFA_MAX, nullptr) < 0) return std::nullopt;
  // IPv4 puts the interface's own address in IFA_LOCAL (IFA_ADDRESS is the peer on
  // point-to-point links); IPv6 only has IFA_ADDRESS.
  nlattr* attr = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
  if (!attr) return std::nullopt;
  auto a = address_from(nla_data(attr), ifa->ifa_family);
  if (!a) return std::nullopt;
  bool ours = tb[IFA_PROTO] && nla_get_u8(tb[IFA_PROTO]) == kAddressProtocol;
  return ParsedAddress{static_cast<int>(ifa->ifa_index), config::Cidr{*a, ifa->ifa_prefixlen}, ours};
}

std::optional<LinkInfo> parse_link_message(nlmsghdr* hdr) {
  if (hdr->nlmsg_type != RTM_NEWLINK && hdr->nlmsg_type != RTM_DELLINK) return std::nullopt;
  auto* ifi = static_cast<ifinfomsg*>(nlmsg_data(hdr));
  nlattr* tb[IFLA_MAX + 1] = {};
  if (nlmsg_parse(hdr, sizeof(ifinfomsg), tb, IFLA_MAX, nullptr) < 0) return std::nullopt;
  LinkInfo l;
  l.ifindex = ifi->ifi_index;
  if (tb[IFLA_IFNAME]) l.name = nla_get_string(tb[IFLA_IFNAME]);
  if (tb[IFLA_ADDRESS] && nla_len(tb[IFLA_ADDRESS]) == 6) std::memcpy(l.mac.data(), nla_data(tb[IFLA_ADDRESS]), 6);
  l.deleted = hdr->nlmsg_type == RTM_DELLINK;
  l.up = !l.deleted && (ifi->ifi_flags & IFF_UP) && (ifi->ifi_flags & kIffLowerUp);
  l.noarp = ifi->ifi_flags & IFF_NOARP;
  return l;
}

bool ipv6_disabled(const std::string& ifname) {
  std::ifstream in("/proc/sys/net/ipv6/conf/" + ifname + "/disable_ipv6");
  int v = 1;
  if (!(in >> v)) return true;  // no IPv6 on this interface at all
  return v != 0;
}

class LinuxNetOps final : public NetOps {
 public:
  LinuxNetOps(asio::io_context& io, NlSock route, NlSock diag)
      : io_(io), route_(std::move(route)), diag_(std::move(diag)) {}

  ~LinuxNetOps() override {
    if (monitor_fd_) monitor_fd_->release();  // libnl owns the descriptor
    if (tx_fd_ >= 0) ::close(tx_fd_);
  }

  std::optional<LinkInfo> link(const std::string& ifname, std::string& error) override {
    rtnl_link* raw = nullptr;
    if (int err = rtnl_link_get_kernel(route_.get(), 0, ifname.c_str(), &raw); err < 0) {
      error = err == -NLE_OBJ_NOTFOUND || err == -NLE_NODEV ? "interface " + ifname + " does not exist"
                                                            : "cannot read interface " + ifname + ": " + nl_geterror(err);
      return std::nullopt;
    }
    std::unique_ptr<rtnl_link, RtnlLinkDeleter> l(raw);
    LinkInfo info;
    info.ifindex = rtnl_link_get_ifindex(l.get());
    info.name = ifname;
    unsigned flags = rtnl_link_get_flags(l.get());
    info.up = (flags & IFF_UP) && (flags & kIffLowerUp);
    info.noarp = flags & IFF_NOARP;
    if (nl_addr* mac = rtnl_link_get_addr(l.get()); mac && nl_addr_get_len(mac) == 6) {
      std::memcpy(info.mac.data(), nl_addr_get_binary_addr(mac), 6);
    }
    info.ipv6_disabled = ipv6_disabled(ifname);
    return info;
  }

  std::string add_address(int ifindex, const config::Cidr& cidr) override {
    return change_address(ifindex, cidr, true);
  }

  std::string delete_address(int ifindex, const config::Cidr& cidr) override {
    return change_address(ifindex, cidr, false);
  }

  std::vector<MarkedAddress> marked_addresses(std::string& error) override {
    std::vector<MarkedAddress> out;
    NlSock s = connect(NETLINK_ROUTE, error);
    if (!s) return out;
    if (int err = nl_rtgen_request(s.get(), RTM_GETADDR, AF_UNSPEC, NLM_F_DUMP); err < 0) {
      error = std::string("cannot list addresses: ") + nl_geterror(err);
      return out;
    }
    nl_socket_modify_cb(s.get(), NL_CB_VALID, NL_CB_CUSTOM, [](nl_msg* msg, void* arg) -> int {
      auto* list = static_cast<std::vector<MarkedAddress>*>(arg);
      if (auto a = parse_address_message(nlmsg_hdr(msg)); a && a->ours) {
        char name[IF_NAMESIZE] = {};
        if_indextoname(static_cast<unsigned>(a->ifindex), name);
        list->push_back({a->ifindex, name, a->cidr});
      }
      return NL_OK;
    }, &out);
    if (int err = nl_recvmsgs_default(s.get()); err < 0) error = std::string("cannot list addresses: ") + nl_geterror(err);
    return out;
  }

  std::string send_frames(int ifindex, const std::vector<Frame>& frames) override {
    if (tx_fd_ < 0) {
      tx_fd_ = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
      if (tx_fd_ < 0) return std::string("cannot open a packet socket: ") + std::strerror(errno);
    }
    for (const Frame& f : frames) {
      sockaddr_ll to{};
      to.sll_family = AF_PACKET;
      to.sll_ifindex = ifindex;
      to.sll_halen = 6;
      std::memcpy(to.sll_addr, f.data(), 6);
      if (::sendto(tx_fd_, f.data(), f.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0) {
        return std::string("cannot send a frame: ") + std::strerror(errno);
      }
    }
    return {};
  }

  void probe(const LinkInfo& link, const config::Address& address, Duration wait,
             std::function<void(std::optional<Mac>, std::string)> done) override {
    uint16_t proto = address.is_v6() ? ETH_P_IPV6 : ETH_P_ARP;
    int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(proto));
    if (fd < 0) {
      asio::post(io_, [done, e = std::string("cannot open a packet socket: ") + std::strerror(errno)] { done(std::nullopt, e); });
      return;
    }
    sockaddr_ll at{};
    at.sll_family = AF_PACKET;
    at.sll_protocol = htons(proto);
    at.sll_ifindex = link.ifindex;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&at), sizeof at) < 0) {
      std::string e = std::string("cannot bind a packet socket: ") + std::strerror(errno);
      ::close(fd);
      asio::post(io_, [done, e] { done(std::nullopt, e); });
      return;
    }
    auto p = std::make_shared<Probe>(io_, fd, link.mac, address, std::move(done));
    Frame f = address.is_v6() ? dad_solicitation(link.mac, address) : arp_probe(link.mac, address);
    sockaddr_ll to = at;
    to.sll_halen = 6;
    std::memcpy(to.sll_addr, f.data(), 6);
    if (::sendto(fd, f.data(), f.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0) {
      p->finish(std::nullopt, std::string("cannot send the probe: ") + std::strerror(errno));
      return;
    }
    p->start(wait);
  }

  size_t destroy_sockets(const config::Address& address, std::string& error) override {
    // 1. Dump the TCP sockets of the address's family that a process may still use: all
    //    states but LISTEN and TIME_WAIT (a closed connection's remains: a busy VIP has
    //    thousands, and destroying them one round trip each only delays the release).
    inet_diag_req_v2 req{};
    req.sdiag_family = static_cast<uint8_t>(family_of(address));
    req.sdiag_protocol = IPPROTO_TCP;
    req.idiag_states = 0xfff & ~((1u << TCP_LISTEN) | (1u << TCP_TIME_WAIT));
    if (int err = nl_send_simple(diag_.get(), SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, &req, sizeof req); err < 0) {
      error = std::string("cannot list sockets: ") + nl_geterror(err);
      return 0;
    }
    struct Collect {
      const config::Address* address;
      std::vector<inet_diag_sockid> ids;
    } collect{&address, {}};
    nl_socket_modify_cb(diag_.get(), NL_CB_VALID, NL_CB_CUSTOM, [](nl_msg* msg, void* arg) -> int {
      auto* c = static_cast<Collect*>(arg);
      auto* m = static_cast<inet_diag_msg*>(nlmsg_data(nlmsg_hdr(msg)));
      if (std::memcmp(m->id.idiag_src, c->address->bytes.data(), length_of(*c->address)) == 0) c->ids.push_back(m->id);
      return NL_OK;
    }, &collect);
    if (int err = nl_recvmsgs_default(diag_.get()); err < 0) {
      error = std::string("cannot list sockets: ") + nl_geterror(err);
      return 0;
    }
    // 2. Destroy each (the kernel sends the peer a reset).
    size_t destroyed = 0;
    for (const auto& id : collect.ids) {
      inet_diag_req_v2 kill{};
      kill.sdiag_family = req.sdiag_family;
      kill.sdiag_protocol = IPPROTO_TCP;
      kill.idiag_states = 0xfff;
      kill.id = id;
      int err = nl_send_simple(diag_.get(), SOCK_DESTROY, NLM_F_ACK, &kill, sizeof kill);
      if (err >= 0) err = nl_wait_for_ack(diag_.get());
      if (err == 0) {
        ++destroyed;
      } else if (err != -NLE_OBJ_NOTFOUND) {  // a socket that closed meanwhile is fine
        error = std::string("cannot destroy a socket: ") + nl_geterror(err);
      }
    }
    return destroyed;
  }

  void watch(NetWatcher watcher) override {
    watcher_ = std::move(watcher);
    std::string error;
    monitor_ = connect(NETLINK_ROUTE, error);
    if (!monitor_) return;
    nl_socket_disable_seq_check(monitor_.get());
    nl_socket_add_memberships(monitor_.get(), RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR, 0);
    nl_socket_set_nonblocking(monitor_.get());
    nl_socket_set_buffer_size(monitor_.get(), 1 << 20, 0);
    nl_socket_modify_cb(monitor_.get(), NL_CB_VALID, NL_CB_CUSTOM, [](nl_msg* msg, void* arg) -> int {
      static_cast<LinuxNetOps*>(arg)->on_notification(nlmsg_hdr(msg));
      return NL_OK;
    }, this);
    monitor_fd_ = std::make_unique<asio::posix::stream_descriptor>(io_, nl_socket_get_fd(monitor_.get()));
    wait_notifications();
  }

 private:
  struct Probe : std::enable_shared_from_this<Probe> {
    Probe(asio::io_context& io, int fd, Mac own_mac, config::Address address,
          std::function<void(std::optional<Mac>, std::string)> callback)
        : sd(io, fd), timer(io), own(own_mac), target(address), done(std::move(callback)) {}
    void start(Duration wait) {
      timer.expires_after(wait);
      timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (!ec) self->finish(std::nullopt, "");
      });
      read();
    }
    void read() {
      sd.async_wait(asio::posix::stream_descriptor::wait_read, [self = shared_from_this()](boost::system::error_code ec) {
        if (ec || self->finished) return;
        uint8_t buf[2048];
        for (;;) {
          ssize_t n = ::recv(self->sd.native_handle(), buf, sizeof buf, 0);
          if (n <= 0) break;
          auto who = claimant(buf, static_cast<size_t>(n), self->target);
          if (who && *who != self->own) return self->finish(who, "");
        }
        self->read();
      });
    }
    void finish(std::optional<Mac> who, std::string error) {
      if (finished) return;
      finished = true;
      timer.cancel();
      boost::system::error_code ignored;
      sd.close(ignored);
      auto cb = std::move(done);
      asio::post(sd.get_executor(), [cb, who, error] { cb(who, error); });
    }
    asio::posix::stream_descriptor sd;
    asio::steady_timer timer;
    Mac own;
    config::Address target;
    std::function<void(std::optional<Mac>, std::string)> done;
    bool finished = false;
  };

  std::string change_address(int ifindex, const config::Cidr& cidr, bool add) {
    std::unique_ptr<rtnl_addr, RtnlAddrDeleter> a(rtnl_addr_alloc());
    std::unique_ptr<nl_addr, NlAddrDeleter> local(
        nl_addr_build(family_of(cidr.address), cidr.address.bytes.data(), length_of(cidr.address)));
    if (!a || !local) return "out of memory";
    nl_addr_set_prefixlen(local.get(), cidr.prefix);
    rtnl_addr_set_ifindex(a.get(), ifindex);
    rtnl_addr_set_family(a.get(), family_of(cidr.address));
    rtnl_addr_set_local(a.get(), local.get());
    rtnl_addr_set_prefixlen(a.get(), cidr.prefix);
    if (cidr.address.is_v6()) rtnl_addr_set_flags(a.get(), IFA_F_NODAD);
    nl_msg* raw = nullptr;
    int err = add ? rtnl_addr_build_add_request(a.get(), NLM_F_CREATE | NLM_F_EXCL, &raw)
                  : rtnl_addr_build_delete_request(a.get(), 0, &raw);
    if (err < 0) return nl_geterror(err);
    std::unique_ptr<nl_msg, NlMsgDeleter> msg(raw);
    // libnl 3.7 has no setter for IFA_PROTO (kernel 6.1+): append the attribute ourselves.
    if (add && nla_put_u8(msg.get(), IFA_PROTO, kAddressProtocol) < 0) return "cannot build the request";
    err = nl_send_auto(route_.get(), msg.get());
    if (err >= 0) err = nl_wait_for_ack(route_.get());
    if (err >= 0) return {};
    if (!add && (err == -NLE_NOADDR || err == -NLE_OBJ_NOTFOUND)) return {};
    if (add && err == -NLE_EXIST) return "the address is already configured on the interface (not by hafront)";
    return nl_geterror(err);
  }

  void wait_notifications() {
    monitor_fd_->async_wait(asio::posix::stream_descriptor::wait_read, [this](boost::system::error_code ec) {
      if (ec) return;
      int err = nl_recvmsgs_default(monitor_.get());
      if (err < 0 && err != -NLE_AGAIN && watcher_.resync) watcher_.resync();  // overrun: state lost
      wait_notifications();
    });
  }

  void on_notification(nlmsghdr* hdr) {
    if (auto a = parse_address_message(hdr)) {
      if (watcher_.address) watcher_.address(a->ifindex, a->cidr.address, hdr->nlmsg_type == RTM_NEWADDR, a->ours);
    } else if (auto l = parse_link_message(hdr)) {
      if (!l->name.empty()) l->ipv6_disabled = ipv6_disabled(l->name);
      if (watcher_.link) watcher_.link(*l);
    }
  }

  asio::io_context& io_;
  NlSock route_;
  NlSock diag_;
  NlSock monitor_;
  std::unique_ptr<asio::posix::stream_descriptor> monitor_fd_;
  NetWatcher watcher_;
  int tx_fd_ = -1;
};

}  // namespace

std::unique_ptr<NetOps> make_linux_net_ops(asio::io_context& io, std::string& error) {
  NlSock route = connect(NETLINK_ROUTE, error);
  if (!route) return nullptr;
  NlSock diag = connect(NETLINK_SOCK_DIAG, error);
  if (!diag) return nullptr;
  return std::make_unique<LinuxNetOps>(io, std::move(route), std::move(diag));
}

}  // namespace hafront::vip
