#include "proxy/server_pool.h"

#include <algorithm>

namespace hafront::proxy {

size_t ServerKeyHash::operator()(const ServerKey& k) const noexcept {
  uint64_t h = (uint64_t{k.id} << 16) ^ k.endpoint.port;
  for (size_t i = 0; i < (k.endpoint.address.is_v6() ? 16 : 4); ++i) h = h * 131 + k.endpoint.address.bytes[i];
  return static_cast<size_t>(h * 0x9e3779b97f4a7c15ULL);
}

std::optional<uint32_t> ServerPool::put(const ServerKey& key, uint32_t handle, SteadyTime now) {
  if (limits_.per_server == 0 || limits_.per_worker == 0) return handle;
  std::vector<Idle>& list = idle_[key];
  std::optional<uint32_t> evicted;
  if (list.size() >= limits_.per_server) {
    evicted = list.front().handle;
    list.erase(list.begin());
    --total_;
  } else if (total_ >= limits_.per_worker) {
    return handle;
  }
  list.push_back({handle, now});
  ++total_;
  return evicted;
}

std::optional<uint32_t> ServerPool::take(const ServerKey& key) noexcept {
  auto it = idle_.find(key);
  if (it == idle_.end() || it->second.empty()) return std::nullopt;
  uint32_t handle = it->second.back().handle;
  it->second.pop_back();
  --total_;
  return handle;
}

bool ServerPool::remove(const ServerKey& key, uint32_t handle) noexcept {
  auto it = idle_.find(key);
  if (it == idle_.end()) return false;
  auto& list = it->second;
  auto at = std::find_if(list.begin(), list.end(), [&](const Idle& i) { return i.handle == handle; });
  if (at == list.end()) return false;
  list.erase(at);
  --total_;
  return true;
}

void ServerPool::purge(SteadyTime now, const std::function<void(uint32_t)>& close) {
  for (auto it = idle_.begin(); it != idle_.end();) {
    auto& list = it->second;
    size_t n = 0;
    while (n < list.size() && now - list[n].since >= limits_.max_idle) ++n;
    for (size_t i = 0; i < n; ++i) close(list[i].handle);
    list.erase(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(n));
    total_ -= n;
    // A server nobody parks at any more (removed by a reload) leaves no entry behind.
    it = list.empty() ? idle_.erase(it) : std::next(it);
  }
}

void ServerPool::clear(const std::function<void(uint32_t)>& close) {
  for (auto& [key, list] : idle_) {
    for (const Idle& i : list) close(i.handle);
  }
  idle_.clear();
  total_ = 0;
}

size_t ServerPool::size(const ServerKey& key) const noexcept {
  auto it = idle_.find(key);
  return it == idle_.end() ? 0 : it->second.size();
}

}  // namespace hafront::proxy
