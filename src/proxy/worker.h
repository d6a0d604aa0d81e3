// One data-plane worker: a thread with its own I/O back-end (its own io_uring ring, or epoll
// instance), its own listening sockets and its own Balancer per service.
//
// The loop: wait for completions (or the next time-out), hand each to the connection it
// belongs to, carry out the actions its TcpSession (tcp mode) or HttpSession (http mode)
// answers, fire due timers, and between batches pick up a new routing snapshot if the
// control plane published one.
//
// http mode: server connections are the worker's, apart from the client connections. One
// is lent to a session for a request and handed back after a complete response: into the
// worker's pool of idle connections (src/proxy/server_pool.h), where a receive stays armed
// on it so that a close by the server is noticed; the next request to that server, from any
// client, takes it over with that receive (its completion then goes to the new owner). Nothing on
// this path blocks, throws or locks; what the worker shares with other threads is the
// snapshot slot (read), its own counter blocks (written), the passive event channel and
// the access log queue (posted to, never waited on).
//
// Timers: one heap of session deadlines per worker. The wait for completions takes the
// earliest as its time-out (io_uring: the time-out argument of the wait itself, no SQE;
// epoll: epoll_wait's), so no timer is ever submitted per connection. A deadline that moved
// later with traffic is found moved when its entry comes up, and armed again then: a busy
// connection costs one heap operation per time-out period, not one per event.
//
// Tokens: every operation carries [connection slot:32][generation:24][attempt:4][operation:4];
// a completion whose generation no longer matches its slot belongs to a connection that is
// gone, and only gives back what it holds (a buffer, an accepted socket). In http mode the
// attempt tells the server connection an operation was for: one the session let go of
// (closed, or parked) is stale. A pooled connection's receive carries the server
// connection's slot instead.
#pragma once

#include <atomic>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "proxy/access_log.h"
#include "proxy/event_queue.h"
#include "proxy/io_backend.h"
#include "proxy/proxy_types.h"
#include "proxy/routing.h"

namespace hafront::proxy {

// What all workers share with the control plane; owned by the DataPlane, alive while any
// worker runs.
struct WorkerShared {
  SnapshotSlot* snapshot = nullptr;
  EventChannel<PassiveEvent>* events = nullptr;
  AccessLog* access_log = nullptr;
  uint32_t workers = 1;
};

struct WorkerSetup {
  IoBackend backend = IoBackend::Epoll;
  IoOptions io;
  bool buffer_ring = false;
};

class Worker {
 public:
  Worker(uint32_t index, WorkerShared shared);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Starts the thread, which makes its back-end and then runs. Returns once the back-end is
  // up: an empty string, its description in `description`; or why it could not be made.
  std::string start(const WorkerSetup& setup, std::string& description);
  // Makes the worker look at the snapshot slot now (after a publish).
  void nudge() noexcept;
  // Ends every connection, closes what the worker holds and joins the thread.
  void stop();

 private:
  class Loop;
  uint32_t index_;
  WorkerShared shared_;
  Loop* loop_ptr_ = nullptr;  // owned by the thread; set before start() returns
  std::thread thread_;
};

}  // namespace hafront::proxy
