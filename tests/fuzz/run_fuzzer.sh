#!/usr/bin/env bash
# run_fuzzer.sh FUZZER SEED_DIR SECONDS: fuzzes from a temporary copy of the seeds (plus
# the invalid-config corpus for the config target) and removes it afterwards.
set -euo pipefail
fuzzer=$(realpath "$1") seeds=$(realpath "$2") seconds=$3
work=$(mktemp -d /tmp/hafront-fuzz-XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r "$seeds"/. "$work/"
if [[ "$fuzzer" == *fuzz_config ]]; then
  cp "$(dirname "$(realpath "$0")")"/../config/invalid/*.yaml "$work/" 2>/dev/null || true
fi
# Crashing or slow inputs are kept beside the fuzzer binary for inspection.
artifacts="$(dirname "$fuzzer")/artifacts/"
mkdir -p "$artifacts"
cd "$work"
"$fuzzer" -artifact_prefix="$artifacts" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
  -print_final_stats=1 "$work"
