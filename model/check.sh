#!/usr/bin/env bash
# Checks model/lease.pml with SPIN (Debian package `spin`): the protocol as implemented must
# keep "at most one node answers for the VIP" in every reachable state, and every broken
# variant must be caught (a counterexample found), so the check is known to be able to fail.
#
#   model/check.sh            the runs that complete (~6 min on 2 cores, ~1.4 GB; not yet in
#                             scripts/test: doc/lease-safety.md, "Status of the model check")
#   model/check.sh --full     also the larger budgets and the other broken variants (these
#                             do not complete on these machines yet: doc/lease-safety.md)
#   model/check.sh -D...      one extra run of the default model with these defines
#
# Each run prints its bounds, the states explored and the verdict. Exit status 0 only if
# every expected result came out.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
command -v spin >/dev/null || { echo "model/check.sh: spin is not installed (apt-get install spin)" >&2; exit 2; }
work="$(mktemp -d /tmp/hafront-model.XXXXXX)"
trap 'rm -rf "$work"' EXIT
cp "$here/lease.pml" "$work/"
cd "$work"

failures=0
# run EXPECT NAME DEFINES...: EXPECT is "safe" (exhaustive, no violation) or "caught"
# (an assertion violation of the property, not of a model bound).
run() {
  local expect="$1" name="$2"
  shift 2
  local t0=$SECONDS
  rm -f pan pan.* lease.pml.trail
  spin -a "$@" lease.pml >spin.log 2>&1 || { cat spin.log; echo "FAIL $name: spin -a failed"; failures=$((failures + 1)); return; }
  gcc -O2 -w -DSAFETY -DCOLLAPSE -DVECTORSZ=2048 -DMEMLIM=${HAFRONT_MODEL_MEMLIM_MB:-3000} -o pan pan.c
  local out rc=0
  out="$(./pan -m1000000 -w26 2>&1)" || rc=$?
  local states errors depth
  states="$(sed -n 's/^ *\([0-9e.+]*\) states, stored.*/\1/p' <<<"$out" | head -1)"
  errors="$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' <<<"$out" | head -1)"
  depth="$(sed -n 's/.*depth reached \([0-9]*\).*/\1/p' <<<"$out" | head -1)"
  local verdict
  if [ "$expect" = safe ]; then
    if [ "$errors" = 0 ] && ! grep -q "Search not completed\|max search depth too small\|out of memory" <<<"$out"; then
      verdict="ok   safe"
    else
      verdict="FAIL expected no violation"
    fi
  else
    if [ "${errors:-0}" -ge 1 ] && [ -f lease.pml.trail ] && spin -t "$@" lease.pml 2>&1 | grep -q "assert(0)"; then
      verdict="ok   caught"
    else
      verdict="FAIL expected a counterexample"
    fi
  fi
  printf '%-4s %-26s %-58s states %-10s depth %-6s %3ds\n' "${verdict%% *}" "$name" "$*" "${states:-?}" "${depth:-?}" $((SECONDS - t0))
  if [ "${verdict%% *}" != ok ]; then
    failures=$((failures + 1))
    echo "$out" | tail -25
    if [ -f lease.pml.trail ]; then
      echo "--- counterexample (events):"
      spin -t "$@" lease.pml 2>&1 | grep -E "FAULT|assigns|acquires|releases|proof|fences|silent|install|starts|resume|attests" | tail -40
    fi
  fi
}

echo "model/lease.pml: at most one node answers for the VIP (spin $(spin -V | awk '{print $2}'))"
only() {  # the defines that allow only the fault kinds named
  local kind out=""
  for kind in CRASHES KILLS DPAUSES NPAUSES CUTS; do
    case " $* " in *" $kind "*) ;; *) out="$out -D$kind=0" ;; esac
  done
  echo "$out"
}
# The protocol as implemented; each run is exhaustive within its budget.
# shellcheck disable=SC2046
run safe "moves"              -DFAULTS=0 -DFENCES=0 -DSILENCES=0 -DMOVES=2 -DSLIPS=0
# shellcheck disable=SC2046
run safe "power-off, fence"   -DFAULTS=1 $(only CRASHES) -DFENCES=1 -DSILENCES=0 -DMOVES=0 -DSLIPS=1
# shellcheck disable=SC2046
run safe "daemon SIGSTOP"     -DFAULTS=1 $(only DPAUSES) -DFENCES=0 -DSILENCES=0 -DMOVES=0 -DSLIPS=0
# A rule taken out is caught.
# Known not to be caught by the reduced model yet (doc/lease-safety.md): reported as FAIL.
run caught "NO_HANDSHAKE"     -DNO_HANDSHAKE -DFAULTS=0 -DFENCES=0 -DSILENCES=0 -DMOVES=2 -DSLIPS=0
if [ "${1:-}" = --full ]; then
  shift
  # Larger budgets and the other variants: their state spaces exceed what this search
  # stores in memory on these machines (doc/lease-safety.md has the figures); a run that
  # does not complete is reported as a failure, never as safe.
  run safe "all faults"       -DFAULTS=1 -DFENCES=1 -DSILENCES=1 -DMOVES=1 -DSLIPS=1
  run caught "RENEW_SELF"     -DRENEW_SELF -DFAULTS=1 $(only CUTS) -DFENCES=0 -DSILENCES=0 -DMOVES=0 -DSLIPS=0
  run caught "PROOF_OWN"      -DPROOF_OWN -DFAULTS=2 -DFENCES=0 -DSILENCES=0 -DMOVES=0 -DSLIPS=0
  run caught "ATTEST_NOSEQ"   -DATTEST_NOSEQ -DFAULTS=2 -DFENCES=0 -DSILENCES=0 -DMOVES=0 -DSLIPS=0
  run caught "MARGIN=0"       -DMARGIN=0 -DFAULTS=1 $(only DPAUSES) -DFENCES=0 -DSILENCES=0 -DMOVES=0 -DSLIPS=1
  run caught "HOLD_MEMBERS_ONLY" -DHOLD_MEMBERS_ONLY -DFAULTS=1 $(only CUTS NPAUSES) -DFENCES=0 -DSILENCES=0 -DMOVES=1 -DSLIPS=0
fi
if [ $# -gt 0 ]; then
  run safe "extra" "$@"
fi
if [ "$failures" -ne 0 ]; then
  echo "model/check.sh: $failures check(s) failed"
  exit 1
fi
echo "model/check.sh: all checks passed"
