#!/usr/bin/env bash
# What the console costs in memory (issue 12): PSS and RSS of one panel process (from
# /proc/PID/smaps_rollup), and the total PSS of every panel process of the console `attach` builds
# for the embedded demo fleet and for a fleet of 100 components, each printed beside its goal.
# Each fleet runs in its own core (private socket and data dir) and its own private tmux server
# (-L hms-cost-<pid>-<n>), which is killed afterwards; nothing touches yours.
#
#   scripts/bench/console_cost.sh [BINARY]     (default: target/release/hms-console, built if missing)
#
# The panes run the slim panel program (hms-panel) when it is beside BINARY, else `BINARY panel`;
# the first line says which, and the default build makes both.
#   HMS_COST_SIZE=200x50                       terminal size the session is built for
#   HMS_COST_OPEN=1                            also open every component's window (`layout twobytwo`)
#   HMS_COST_SETTLE=7                          seconds between the first figures and the settled ones
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-target/release/hms-console}
if [ ! -x "$BIN" ]; then cargo build --release --locked --bin hms-console --bin hms-panel >&2; fi
BIN=$(realpath "$BIN")
SIZE=${HMS_COST_SIZE:-200x50}
COLS=${SIZE%x*}; ROWS=${SIZE#*x}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hms-cost.XXXXXX")
N=0
cleanup() {
  for s in "$WORK"/*/tmux; do [ -f "$s" ] && tmux -L "$(cat "$s")" kill-server 2>/dev/null || true; done
  for p in "$WORK"/*/core.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null || true; done
  sleep 0.5; rm -rf "$WORK"
}
trap cleanup EXIT

kb() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }

# measure NAME CONFIG(or empty for the demo fleet)
measure() {
  local name=$1 config=$2 dir="$WORK/$1" sock tm
  N=$((N + 1)); mkdir -p "$dir"
  sock="$dir/core.sock"; tm="hms-cost-$$-$N"; echo "$tm" > "$dir/tmux"
  local H=("$BIN" --socket "$sock" --data-dir "$dir/data")
  if [ -n "$config" ]; then "${H[@]}" up -c "$config" >"$dir/core.log" 2>&1 & else "${H[@]}" up >"$dir/core.log" 2>&1 & fi
  echo $! > "$dir/core.pid"
  for _ in $(seq 200); do "${H[@]}" status >/dev/null 2>&1 && break; sleep 0.05; done
  if ! HOME="$dir" HMS_TMUX_SOCKET="$tm" COLUMNS=$COLS LINES=$ROWS "${H[@]}" attach --no-attach >"$dir/attach.log" 2>&1; then
    printf '%-34s attach failed: %s\n' "$name" "$(tr '\n' ' ' < "$dir/attach.log" | cut -c1-120)"
    return
  fi
  if [ "${HMS_COST_OPEN:-0}" = 1 ]; then
    for c in $("${H[@]}" status --json | python3 -c 'import json,sys; print(" ".join(c["name"] for c in json.load(sys.stdin)))'); do
      HOME="$dir" HMS_TMUX_SOCKET="$tm" "${H[@]}" layout twobytwo "$c" >/dev/null 2>&1 || true
    done
  fi
  # Every pane's process is its panel; wait until each has connected and drawn (its log says
  # "connected", then give it its first events), so the figures are a live console's.
  local pids=() deadline=$((SECONDS + 30))
  while :; do
    mapfile -t pids < <(tmux -L "$tm" list-panes -a -F '#{pane_pid}')
    local live=0
    for p in "${pids[@]}"; do
      grep -qsE '^[^ ]*/hms-panel | panel ' <(tr '\0' ' ' < "/proc/$p/cmdline") && live=$((live + 1))
    done
    [ "$live" -eq "${#pids[@]}" ] && [ "$live" -gt 0 ] && break
    [ $SECONDS -gt $deadline ] && break
    sleep 0.2
  done
  # Twice: 3 s after every panel started, and once they settled (each panel hands back the pages
  # only its start-up ran 5 s after it started, see src/pages.rs): the operator lives with the
  # second.
  sleep 3
  figures "$name, 3 s" "${pids[@]}"
  sleep "${HMS_COST_SETTLE:-7}"
  figures "$name, settled" "${pids[@]}"
}

# figures LABEL PID...: one panel's median PSS and RSS, and the PSS of all of them.
figures() {
  local name=$1; shift
  local pss_all=0 rss_all=0 list=() pids=("$@")
  for p in "${pids[@]}"; do
    local pss rss; pss=$(kb "$p" Pss); rss=$(kb "$p" Rss)
    pss_all=$((pss_all + pss)); rss_all=$((rss_all + rss)); list+=("$pss:$rss")
  done
  local n=${#pids[@]} med
  med=$(printf '%s\n' "${list[@]}" | sort -t: -k1,1n | awk -v n="$n" 'NR == int((n + 1) / 2)')
  printf '%-40s panes %3d  panel PSS median %5.2f MB, RSS %5.2f MB  all panels PSS %6.1f MB (RSS sum %6.1f MB)\n' \
    "$name" "$n" "$(echo "${med%%:*} / 1024" | bc -l)" "$(echo "${med##*:} / 1024" | bc -l)" \
    "$(echo "$pss_all / 1024" | bc -l)" "$(echo "$rss_all / 1024" | bc -l)"
}

FLEET100="$WORK/fleet100.toml"
for i in $(seq -w 1 100); do
  printf '[[component]]\nname = "svc%s"\ncommand = ["sleep", "100000"]\n\n' "$i"
done > "$FLEET100"

SLIM=$(dirname "$BIN")/hms-panel
if [ -x "$SLIM" ]; then PANES="panes run $SLIM ($(du -k "$SLIM" | cut -f1) KB)"; else PANES="panes run \`$(basename "$BIN") panel\` (no hms-panel beside it)"; fi
echo "$PANES"
echo "binary: $BIN ($(du -m "$BIN" | cut -f1) MB), session ${SIZE}$([ "${HMS_COST_OPEN:-0}" = 1 ] && echo ', every component window opened')"
measure "demo fleet (attach)" ""
measure "100 components (attach)" "$FLEET100"
echo
echo "goals: one panel PSS <= 1.5 MB and RSS <= 5 MB; the demo console <= 30 MB PSS in all"
