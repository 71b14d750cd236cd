#!/bin/bash
# bench/init-reap.sh — what it costs an init to reap orphans, and its memory.
#
#   CPU: an init runs a shell that forks N orphans ((sleep 0 &) N times),
#   waits until the init has reaped them all, then reads the init's own
#   on-CPU time from /proc/<init>/schedstat (ns; utime+stime from
#   /proc/<init>/stat as a cross-check). husk-init vs tini, both with -s.
#   RSS: VmRSS of each init while it supervises a sleeping child, and of
#   husk-init supervising a services directory.
#
# Not part of the test suite (timings vary). Run as root from the repo:
#   bench/init-reap.sh            (N=10000, 3 rounds)
#   N=2000 ROUNDS=5 bench/init-reap.sh
#   INITS="husk-init tini tini-static dumb-init catatonit" bench/init-reap.sh
#                                 (every init as PID 1 of a PID namespace;
#                                 markdown table; see below)
# HUSK_INIT and TINI override the binaries (default: the musl release build
# and tini-static/tini from PATH; apt-get install tini).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
ROUNDS=${ROUNDS:-3}
HUSK_INIT=${HUSK_INIT:-${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-musl/release/husk-init}
TINI=${TINI:-$(command -v tini-static || command -v tini || true)}
[ -x "$HUSK_INIT" ] || { echo "init-reap: $HUSK_INIT not built (cargo build --release --target x86_64-unknown-linux-musl -p husk-init)" >&2; exit 1; }
[ -n "$TINI" ] || { echo "init-reap: tini not found (apt-get install tini)" >&2; exit 1; }
TICK=$(getconf CLK_TCK)

# The workload: N orphans, wait until none is a zombie of our init, then
# print "<schedstat ns> <utime+stime ticks>" of the init.
WORK='
n=$1; i=0
while [ $i -lt $n ]; do (sleep 0 &); i=$((i+1)); done
while :; do
  z=0
  for f in /proc/[0-9]*/stat; do
    read -r pid comm st ppid rest 2>/dev/null < "$f" || continue
    [ "$st" = Z ] && [ "$ppid" = "$PPID" ] && z=$((z+1))
  done
  [ $z -eq 0 ] && break
  sleep 0.05
done
read -r ns rest < /proc/$PPID/schedstat
set -- $(sed "s/.*) //" /proc/$PPID/stat)
echo "$ns $((${12} + ${13}))"
'

measure() { # $1 = init binary; prints the median ns over ROUNDS
    local init=$1 r out
    for r in $(seq "$ROUNDS"); do
        out=$("$init" -s -- sh -c "$WORK" sh "$N")
        echo "$out"
    done | sort -n | awk -v R="$ROUNDS" '{ns[NR]=$1; t[NR]=$2} END {m=int((R+1)/2); print ns[m], t[m]}'
}

# INITS="husk-init tini tini-static dumb-init catatonit" (names on PATH, or
# paths; husk-init means $HUSK_INIT): every init runs as PID 1 of a new PID
# namespace (unshare -pf --mount-proc), the way a container runs it (not all
# of them have a subreaper flag). Prints one markdown table row per init:
# size, VmRSS while supervising, CPU to reap N orphans, ratio husk-init ÷ it.
if [ -n "${INITS:-}" ]; then
    in_pidns() { # init args... (as PID 1 of a new PID + mount namespace)
        unshare -pf --mount-proc --propagation private "$@"
    }
    resolve() { [ "$1" = husk-init ] && echo "$HUSK_INIT" || command -v "$1" || true; }
    declare -A ns rss size
    for name in $INITS; do
        b=$(resolve "$name")
        [ -n "$b" ] || { echo "SKIP: $name not installed" >&2; continue; }
        size[$name]=$(stat -L -c %s "$b")
        # RSS: the init supervises `sleep 2`; read its VmRSS from the host
        # (the init is unshare's only child).
        (exec unshare -pf --mount-proc --propagation private "$b" -- sleep 2) & up=$!
        sleep 1
        ip=$(pgrep -P "$up" | head -1)
        rss[$name]=$(awk '/^VmRSS:/ {print $2}' "/proc/$ip/status" 2>/dev/null || echo "?")
        wait "$up" || true
        ns[$name]=$(for r in $(seq "$ROUNDS"); do in_pidns "$b" -- sh -c "$WORK" sh "$N"; done |
            sort -n | awk -v R="$ROUNDS" '{v[NR]=$1} END {print v[int((R+1)/2)]}')
    done
    h=${ns[husk-init]:-}
    echo "| init | binary (bytes) | VmRSS supervising (KiB) | CPU to reap $N orphans (ms, median of $ROUNDS) | µs/orphan | husk-init ÷ it (CPU) | husk-init ÷ it (RSS) |"
    echo "|---|---|---|---|---|---|---|"
    for name in $INITS; do
        [ -n "${ns[$name]:-}" ] || continue
        awk -v n="$name" -v s="${size[$name]}" -v r="${rss[$name]}" -v c="${ns[$name]}" -v h="$h" \
            -v hr="${rss[husk-init]:-0}" -v N="$N" 'BEGIN {
            printf "| %s | %d | %s | %.1f | %.2f | %s | %s |\n", n, s, r, c/1e6, c/1e3/N,
                (h != "" && c > 0) ? sprintf("%.2f", h/c) : "–", (hr > 0 && r > 0) ? sprintf("%.2f", hr/r) : "–"
        }'
    done
    exit 0
fi

echo "== CPU of the init to reap $N orphans (median of $ROUNDS, subreaper mode)"
read -r h_ns h_t < <(measure "$HUSK_INIT")
read -r t_ns t_t < <(measure "$TINI")
awk -v h="$h_ns" -v t="$t_ns" -v ht="$h_t" -v tt="$t_t" -v n="$N" -v tick="$TICK" 'BEGIN {
    printf "husk-init: %8.1f ms  (%.2f us/orphan; utime+stime %d ms)\n", h/1e6, h/1e3/n, ht*1000/tick
    printf "tini:      %8.1f ms  (%.2f us/orphan; utime+stime %d ms)\n", t/1e6, t/1e3/n, tt*1000/tick
    printf "ratio husk-init/tini: %.2f\n", h/t
}'

rss() { # $1 = pid; VmRSS in KiB
    awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}

echo "== RSS while supervising (VmRSS)"
"$HUSK_INIT" -s -- sleep 3 & hp=$!
"$TINI" -s -- sleep 3 & tp=$!
sleep 1
h_rss=$(rss $hp); t_rss=$(rss $tp)
wait $hp $tp || true

svc=$(mktemp -d /tmp/husk-init-bench.XXXXXX)
trap 'rm -rf "$svc"' EXIT
mkdir -p "$svc/services/sleeper"
printf '#!/bin/sh\nexec sleep 30\n' > "$svc/services/sleeper/run"
chmod +x "$svc/services/sleeper/run"
"$HUSK_INIT" --services "$svc/services" --ctl "$svc/ctl.sock" 2>/dev/null & sp=$!
sleep 1
s_rss=$(rss $sp)
kill -TERM $sp; wait $sp || true

echo "husk-init (container mode): ${h_rss} KiB"
echo "husk-init (services mode):  ${s_rss} KiB"
echo "tini:                       ${t_rss} KiB"
awk -v h="$h_rss" -v t="$t_rss" 'BEGIN { printf "ratio husk-init/tini: %.2f\n", h/t }'
echo "== binary sizes"
ls -l "$HUSK_INIT" "$(readlink -f "$TINI")" | awk '{print $5, $9}'
