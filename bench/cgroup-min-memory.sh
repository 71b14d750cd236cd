#!/bin/bash
# Smallest linux.resources.memory.limit under which `RUNTIME run` of a
# container running /bin/true succeeds, found by binary search (page
# granularity). Measures husk, and runc / crun when installed, on the same
# busybox bundle. Target: husk starts under 512 KiB (crun's documented
# floor; runc needs about 4 MiB).
#
# usage: sudo bench/cgroup-min-memory.sh [HUSK_BIN_DIR]
#   HUSK_BIN_DIR defaults to target/x86_64-unknown-linux-musl/release
#   (build it with: cargo build --release --target x86_64-unknown-linux-musl --workspace --bins)
#   TRIES=N  runs per probe (default 3; a limit counts only if every run passes)
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
BIN=${1:-${HUSK_BIN_DIR:-$PWD/target/x86_64-unknown-linux-musl/release}}
[ -x "$BIN/husk" ] && [ -x "$BIN/husk-rootfs" ] || { echo "no husk/husk-rootfs in $BIN: build first" >&2; exit 1; }
command -v python3 >/dev/null || { echo "needs python3 to edit config.json" >&2; exit 1; }
TRIES=${TRIES:-3}
PAGE=$(getconf PAGESIZE)

WORK=$(mktemp -d /var/tmp/husk-bench-cgmem.XXXXXX)
cleanup() {
    for r in "$WORK"/state-*; do
        [ -d "$r" ] || continue
        for id in $(ls "$r" 2>/dev/null); do
            "$BIN/husk" --root "$r" delete --force "$id" >/dev/null 2>&1 || true
            runc --root "$r" delete --force "$id" >/dev/null 2>&1 || true
            crun --root "$r" delete --force "$id" >/dev/null 2>&1 || true
        done
    done
    for d in /sys/fs/cgroup/*/husk-bench /sys/fs/cgroup/husk-bench; do
        [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/bundle"
"$BIN/husk-rootfs" busybox "$WORK/bundle/rootfs" >/dev/null
"$BIN/husk" spec --bundle "$WORK/bundle"

# Memory+swap equal to the limit (where the kernel accounts swap): no
# swapping out of the limit.
SWAP=0
if [ -e /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes ]; then SWAP=1; fi

set_limit() { # LIMIT
    python3 - "$WORK/bundle/config.json" "$1" "$SWAP" <<'EOF'
import json, sys
p, lim, swap = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
c = json.load(open(p))
# crun 1.8 refuses newer ociVersion strings; the config uses nothing newer.
c["ociVersion"] = "1.0.2"
c["process"]["args"] = ["/bin/true"]
c["process"]["terminal"] = False
c["linux"]["cgroupsPath"] = "/husk-bench/c"
mem = {"limit": lim}
if swap:
    mem["swap"] = lim
c["linux"].setdefault("resources", {})["memory"] = mem
json.dump(c, open(p, "w"), indent=1)
EOF
}

N=0
run_once() { # RUNTIME
    N=$((N + 1))
    local id="b$N" root="$WORK/state-$1"
    mkdir -p "$root"
    case $1 in
    husk) timeout 60 "$BIN/husk" --root "$root" run --bundle "$WORK/bundle" "$id" </dev/null >/dev/null 2>&1 ;;
    runc) timeout 60 runc --root "$root" run --bundle "$WORK/bundle" "$id" </dev/null >/dev/null 2>&1 ;;
    # crun refuses hybrid hosts: hide the cgroup2 mount in a private mount namespace.
    crun) timeout 60 unshare -m --propagation slave sh -c \
        "umount -l /sys/fs/cgroup/unified 2>/dev/null; exec crun --root '$root' run --bundle '$WORK/bundle' '$id'" \
        </dev/null >/dev/null 2>&1 ;;
    esac
    local rc=$?
    "$BIN/husk" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
    [ "$1" = husk ] || "$1" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
    return $rc
}

works() { # RUNTIME LIMIT
    set_limit "$2"
    local i
    for ((i = 0; i < TRIES; i++)); do
        run_once "$1" || return 1
    done
}

search() { # RUNTIME → prints the smallest working limit in bytes, or "-"
    local rt=$1 lo=$PAGE hi=$((64 << 20))
    if ! works "$rt" "$hi"; then
        echo "-"
        return
    fi
    # Invariant: hi works, lo does not (or is the floor).
    if works "$rt" "$lo"; then
        echo "$lo"
        return
    fi
    while [ $((hi - lo)) -gt "$PAGE" ]; do
        local mid=$(((lo + hi) / 2 / PAGE * PAGE))
        [ "$mid" -le "$lo" ] && mid=$((lo + PAGE))
        if works "$rt" "$mid"; then hi=$mid; else lo=$mid; fi
    done
    echo "$hi"
}

printf "%-6s %14s %10s\n" runtime "min limit (B)" "KiB"
for rt in husk runc crun; do
    if [ "$rt" != husk ] && ! command -v "$rt" >/dev/null; then
        printf "%-6s %14s %10s\n" "$rt" "not installed" "-"
        continue
    fi
    m=$(search "$rt")
    if [ "$m" = "-" ]; then
        printf "%-6s %14s %10s\n" "$rt" "fails at 64MiB" "-"
    else
        printf "%-6s %14d %10d\n" "$rt" "$m" $((m / 1024))
    fi
done
echo "(mode: $(grep -q ' - cgroup cgroup ' /proc/self/mountinfo && echo v1 || echo v2); kernel $(uname -r); $TRIES runs per probe)"
