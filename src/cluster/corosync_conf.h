// corosync.conf rendered from hafront's config, so operators keep one file. Pure: the
// config in, the text out (`hafrontctl corosync-conf -c FILE`).
#pragma once

#include <string>

#include "config/config_types.h"

namespace hafront::cluster {

struct CorosyncConfOptions {
  // knet encryption (aes256/sha256) needs /etc/corosync/authkey on every node
  // (corosync-keygen). On by default, as pcs does; off only for throw-away test clusters.
  bool crypto = true;
};

std::string render_corosync_conf(const config::Config& config, const CorosyncConfOptions& options = {});

}  // namespace hafront::cluster
