// Starting a helper process (fence agent, exec check, exec alert hook) the same way
// everywhere: posix_spawn, argv only (no shell), a fixed small environment, file
// descriptors 0-2 as the caller gives them and nothing else inherited, signals unblocked
// and at their defaults, and a session of its own so one kill(-pid) reaches everything
// the command starts (HAProxy's external checks and Pacemaker's fencer do the same).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace hafront {

// The environment every helper gets before the caller's additions.
std::vector<std::string> base_environment();

struct SpawnFds {
  int in = -1;   // -1: /dev/null
  int out = -1;
  int err = -1;
};

// Starts argv[0] (a path) with `argv` and `env` ("NAME=value"). Returns 0 and sets `pid`,
// or the error number (ENOENT: no such program).
int spawn_in_session(const std::vector<std::string>& argv, const std::vector<std::string>& env, SpawnFds fds,
                     pid_t& pid);

}  // namespace hafront
