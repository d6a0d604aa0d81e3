// Parsers for the value syntaxes of the config file: durations, sizes, addresses, CIDRs,
// endpoints and names. Pure functions; each returns nullopt (or an error text) on bad input
// and never throws.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "config/config_types.h"

namespace hafront::config {

// "300ms", "2s", "1.5s", "90m", "2h", "1d", "0". A bare number other than 0 is refused:
// every duration carries its unit. Fractions must come out as whole milliseconds.
std::optional<Duration> parse_duration(std::string_view text);
std::string format_duration(Duration d);  // shortest exact form: 1500ms -> "1500ms", 90000 -> "90s"

// "512", "16KiB", "16k", "4MiB", "1G". k/K/KiB = 1024 (sizes here are buffers, not disks).
std::optional<uint64_t> parse_size(std::string_view text);

std::optional<Address> parse_address(std::string_view text);  // dotted quad or RFC 4291 text
std::optional<Cidr> parse_cidr(std::string_view text);        // ADDRESS/PREFIX, prefix required
// "192.0.2.1:80" or "[2001:db8::1]:80"; port 1..65535.
std::optional<Endpoint> parse_endpoint(std::string_view text);
std::optional<uint16_t> parse_port(std::string_view text);

// Names of nodes, VIPs, checks, services, servers and devices: 1-63 characters of
// [A-Za-z0-9_.-], starting with a letter or digit.
bool is_valid_name(std::string_view name);

// Edit distance, for "did you mean" hints.
size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace hafront::config
