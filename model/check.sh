#!/usr/bin/env bash
# Checks model/lease.pml with SPIN (Debian package `spin`): the protocol as implemented must
# keep "at most one node answers for the VIP" in every state a run explores, and each broken
# variant must be caught (a counterexample found), so the check is known to be able to fail.
#
#   model/check.sh             the runs scripts/test runs (ctest label "model": one test per run)
#   model/check.sh RUN...      only these runs (names below)
#   model/check.sh --list      the run names, those of scripts/test first
#   model/check.sh --full      also the larger budgets and the variants the model does not
#                              catch yet (doc/lease-safety.md, "Status of the model check")
#
# Kinds of run:
#   safe     exhaustive search (states stored whole, COLLAPSE-compressed): passes only if it
#            completes with no violation
#   hc       exhaustive search with hash compaction (a state is stored as a 32-bit signature
#            in a 2^27-slot table, 59 bits in all: a missed state is improbable at these
#            sizes, ~1e-3 expected for 25 M states); passes like safe
#   bitstate supertrace search (one bit per state; states whose hash collides are skipped):
#            passes if no violation is found; it is a partial search, printed as such with
#            SPIN's hash factor. QUOTA=N among the defines stops it after N minutes (pan -QN),
#            printed as such too
#   caught   passes only if SPIN finds a counterexample to the property itself (not a model
#            bound) and its replay ends in the monitor's assertion
#
# Each run prints its kind, name, defines, states, depth and time; a failure also prints
# SPIN's output and, when there is one, the counterexample's events. The verifier is built
# with clang -O0 (a few seconds; -O1 halves the search time but takes ~100 s to compile:
# HAFRONT_MODEL_CFLAGS overrides). Memory per run: HAFRONT_MODEL_MEMLIM_MB (default 3000).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

# name | kind | in scripts/test (yes/full) | defines
RUNS=(
  "moves|safe|yes|-DFAULTS=0 -DFENCES=0 -DSILENCES=0 -DMOVES=2 -DSLIPS=0"
  "power-off-fence|safe|yes|-DFAULTS=1 ONLY=CRASHES -DFENCES=1 -DSILENCES=0 -DMOVES=0 -DSLIPS=1"
  "daemon-pause|hc|full|-DFAULTS=1 ONLY=DPAUSES -DFENCES=0 -DSILENCES=0 -DMOVES=0 -DSLIPS=0"
  "moves-free-order|bitstate|full|-DFREE_ORDER -DFAULTS=0 -DFENCES=0 -DSILENCES=0 -DMOVES=2 -DSLIPS=0"
  "caught-no-handshake|caught|yes|-DNO_HANDSHAKE -DFREE_ORDER -DFAULTS=0 -DFENCES=0 -DSILENCES=0 -DMOVES=2 -DSLIPS=0"
  "caught-new-owner-only|caught|yes|-DNEW_OWNER_ONLY -DFREE_ORDER -DFAULTS=0 -DFENCES=0 -DSILENCES=0 -DMOVES=2 -DSLIPS=0"
  "caught-renew-unsynced|caught|yes|-DRENEW_UNSYNCED -DFAULTS=1 ONLY=FLAPS -DFENCES=0 -DSILENCES=0 -DMOVES=0 -DSLIPS=0"
  "cut|safe|full|-DFAULTS=1 ONLY=CUTS -DFENCES=0 -DSILENCES=0 -DMOVES=0 -DSLIPS=0"
  "node-pause|safe|full|-DFAULTS=1 ONLY=NPAUSES -DFENCES=0 -DSILENCES=0 -DMOVES=0 -DSLIPS=0"
  "kill|safe|full|-DFAULTS=1 ONLY=KILLS -DFENCES=0 -DSILENCES=0 -DMOVES=0 -DSLIPS=0"
  "all-faults|safe|full|-DFAULTS=1 -DFENCES=1 -DSILENCES=1 -DMOVES=1 -DSLIPS=1"
  "flap|bitstate|full|-DFAULTS=1 ONLY=FLAPS -DFLAPNODES=1 -DFENCES=0 -DSILENCES=0 -DMOVES=0 -DSLIPS=0 QUOTA=4"
  "caught-hold-members-only|caught|full|-DHOLD_MEMBERS_ONLY -DFREE_ORDER -DFAULTS=1 ONLY=CUTS -DFENCES=0 -DSILENCES=0 -DMOVES=1 -DSLIPS=0"
  "caught-margin-0|caught|full|-DMARGIN=0 -DFREE_ORDER -DFAULTS=1 ONLY=DPAUSES -DFENCES=0 -DSILENCES=0 -DMOVES=0 -DSLIPS=2"
  "caught-renew-self|caught|full|-DRENEW_SELF -DFAULTS=1 ONLY=CUTS -DFENCES=0 -DSILENCES=0 -DMOVES=0 -DSLIPS=0"
  "caught-proof-own|caught|full|-DPROOF_OWN -DFAULTS=2 -DFENCES=0 -DSILENCES=0 -DMOVES=0 -DSLIPS=0"
  "caught-attest-noseq|caught|full|-DATTEST_NOSEQ -DFAULTS=2 -DFENCES=0 -DSILENCES=0 -DMOVES=0 -DSLIPS=0"
)

if [ "${1:-}" = --list ]; then
  for r in "${RUNS[@]}"; do IFS='|' read -r name kind set _ <<<"$r"; echo "$name $kind $set"; done
  exit 0
fi
command -v spin >/dev/null || { echo "model/check.sh: spin is not installed (apt-get install spin)" >&2; exit 2; }
cc="${HAFRONT_MODEL_CC:-$(command -v clang || command -v gcc)}"
cflags="${HAFRONT_MODEL_CFLAGS:--O0}"
memlim="${HAFRONT_MODEL_MEMLIM_MB:-3000}"

selected=()
case "${1:-}" in
  "")     for r in "${RUNS[@]}"; do [ "$(cut -d'|' -f3 <<<"$r")" = yes ] && selected+=("$r"); done ;;
  --full) selected=("${RUNS[@]}") ;;
  *)      for want in "$@"; do
            found=""
            for r in "${RUNS[@]}"; do [ "${r%%|*}" = "$want" ] && { selected+=("$r"); found=1; }; done
            [ -n "$found" ] || { echo "model/check.sh: no run named '$want' (--list)" >&2; exit 2; }
          done ;;
esac

work="$(mktemp -d /tmp/hafront-model.XXXXXX)"
trap 'rm -rf "$work"' EXIT
cp "$here/lease.pml" "$work/"
cd "$work"

# The defines of a run: ONLY=KIND1,KIND2 turns every other fault kind off.
defines() {
  local d out=""
  for d in $1; do
    case "$d" in
      ONLY=*)
        local kind
        for kind in CRASHES KILLS DPAUSES NPAUSES CUTS FLAPS; do
          case ",${d#ONLY=}," in *",$kind,"*) ;; *) out="$out -D$kind=0" ;; esac
        done ;;
      QUOTA=*) ;;
      *) out="$out $d" ;;
    esac
  done
  echo "$out"
}

echo "model/lease.pml: at most one node answers for the VIP (spin $(spin -V | awk '{print $3}'), $(basename "$cc") $cflags)"
failures=0
for r in "${selected[@]}"; do
  IFS='|' read -r name kind _ raw <<<"$r"
  # shellcheck disable=SC2207
  defs=($(defines "$raw"))
  quota="$(sed -n 's/.*QUOTA=\([0-9]*\).*/\1/p' <<<"$raw")"
  t0=$SECONDS
  rm -f pan pan.* lease.pml.trail
  if ! spin -a "${defs[@]}" lease.pml >spin.log 2>&1; then
    cat spin.log; echo "FAIL $name: spin -a failed"; failures=$((failures + 1)); continue
  fi
  case "$kind" in
    bitstate) store="-DBITSTATE"; panargs="-w28 -k3${quota:+ -Q$quota}" ;;
    hc)       store="-DHC4"; panargs="-w27" ;;
    *)        store="-DCOLLAPSE"; panargs="-w26" ;;
  esac
  # shellcheck disable=SC2086
  "$cc" $cflags -w -DSAFETY $store -DVECTORSZ=2048 -DMEMLIM="$memlim" -o pan pan.c
  rc=0
  # shellcheck disable=SC2086
  out="$(./pan -m1000000 $panargs 2>&1)" || rc=$?
  states="$(sed -n 's/^ *\([0-9e.+]*\) states, stored.*/\1/p' <<<"$out" | head -1)"
  errors="$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' <<<"$out" | head -1)"
  depth="$(sed -n 's/.*depth reached \([0-9]*\).*/\1/p' <<<"$out" | head -1)"
  incomplete=""
  grep -q "Search not completed\|max search depth too small\|out of memory" <<<"$out" && incomplete=1
  note=""
  case "$kind" in
    safe|hc)
      if [ "$rc" = 0 ] && [ "$errors" = 0 ] && [ -z "$incomplete" ]; then ok=1; note="exhaustive, no violation"; else ok=""; fi
      if [ "$kind" = hc ]; then note="${note/exhaustive/exhaustive (hash-compact)}"; fi ;;
    bitstate)
      hf="$(sed -n 's/^hash factor: \([0-9.e+]*\).*/\1/p' <<<"$out" | head -1)"
      if [ "$rc" = 0 ] && [ "$errors" = 0 ] && ! grep -q "max search depth too small\|out of memory" <<<"$out"; then
        ok=1; note="partial (bitstate, hash factor ${hf:-?}$(grep -q "Time limit" <<<"$out" && echo ", stopped after $quota min")), no violation"
      else ok=""; fi ;;
    caught)
      if [ "${errors:-0}" -ge 1 ] && [ -f lease.pml.trail ] && spin -t "${defs[@]}" lease.pml 2>&1 | grep -q "assert(0)"; then
        ok=1; note="counterexample found"
      else ok=""; fi ;;
  esac
  printf '%-4s %-8s %-26s states %-10s depth %-6s %4ds  %s\n' "$([ -n "$ok" ] && echo ok || echo FAIL)" "$kind" "$name" \
    "${states:-?}" "${depth:-?}" $((SECONDS - t0)) "${note:-expected: $([ "$kind" = caught ] && echo "a counterexample" || echo "no violation, search complete")}"
  echo "     ${defs[*]}"
  if [ -z "$ok" ]; then
    failures=$((failures + 1))
    echo "$out" | tail -25
    if [ -f lease.pml.trail ]; then
      echo "--- counterexample (events):"
      spin -t "${defs[@]}" lease.pml 2>&1 | grep -E "FAULT|assigns|acquires|releases|proof|fences|silent|install|starts|resume|attests" | tail -40
    fi
  fi
done
if [ "$failures" -ne 0 ]; then
  echo "model/check.sh: $failures run(s) failed"
  exit 1
fi
echo "model/check.sh: all ${#selected[@]} run(s) passed"
