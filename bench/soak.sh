#!/bin/bash
# bench/soak.sh — leak soak for husk and runc side by side (not in CI).
#
#   sudo bench/soak.sh [N_SEQUENTIAL] [M_PARALLEL]     defaults 1000 200
#
# For each runtime: N sequential `run` of /bin/true, then M containers
# started in parallel (`run -d` of sleep), checked running, then all
# `delete --force`d in parallel. Before and after, it counts what a leak
# would leave: mounts, cgroup directories (every hierarchy), state
# entries, zombies, and the runtime's open fds (none should stay: no
# daemon), and prints one markdown row per runtime with the differences
# and the failures. Everything lives in a temp dir; the runtimes get their
# own --root there.
set -uo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
M=${2:-200}
[ "$(id -u)" = 0 ] || { echo "bench/soak.sh: run as root" >&2; exit 1; }
HUSK=${HUSK:-$PWD/dist/x86_64/husk}
[ -x "$HUSK" ] || { echo "bench/soak.sh: $HUSK missing (run cross/build.sh)" >&2; exit 1; }
RUNC=$(command -v runc || true)
[ -n "$RUNC" ] || { apt-get install -y -qq runc >/dev/null && RUNC=$(command -v runc); }
W=$(mktemp -d /tmp/husk-soak.XXXXXX)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/bundle/rootfs"
if [ -x "$PWD/dist/x86_64/husk-rootfs" ]; then
    rm -rf "$W/bundle/rootfs" && "$PWD/dist/x86_64/husk-rootfs" busybox "$W/bundle/rootfs" >/dev/null
else
    cp /bin/busybox "$W/bundle/rootfs/" && mkdir -p "$W/bundle/rootfs/bin" && for a in sh true sleep; do ln -s ../busybox "$W/bundle/rootfs/bin/$a"; done
fi
(cd "$W/bundle" && "$RUNC" spec)
python3 - "$W/bundle/config.json" <<'EOF'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
json.dump(c, open(p, "w"))
EOF

count() {
    local root=$1
    local mounts cg states zombies
    mounts=$(wc -l </proc/self/mountinfo)
    cg=$(find /sys/fs/cgroup -mindepth 1 -type d 2>/dev/null | wc -l)
    states=$(find "$root" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    zombies=$(ps -eo stat= | grep -c '^Z' || true)
    echo "$mounts $cg $states $zombies"
}

soak() {
    local name=$1 bin=$2 root=$W/root-$1 fail=0 t0 t1 before after
    mkdir -p "$root"
    before=$(count "$root")
    t0=$(date +%s.%N)
    for i in $(seq "$N"); do
        "$bin" --root "$root" run --bundle "$W/bundle" "s$i" >/dev/null 2>&1 </dev/null || fail=$((fail + 1))
    done
    t1=$(date +%s.%N)
    # M in parallel, detached, then all deleted in parallel.
    python3 - "$W/bundle/config.json" "$W/bundle-d" <<'EOF'
import json, os, shutil, sys
src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, exist_ok=True)
if not os.path.exists(os.path.join(dst, "rootfs")):
    os.symlink(os.path.join(os.path.dirname(src), "rootfs"), os.path.join(dst, "rootfs"))
c = json.load(open(src))
c["process"]["args"] = ["sleep", "1000"]
c["root"]["path"] = os.path.join(os.path.dirname(src), "rootfs")
json.dump(c, open(os.path.join(dst, "config.json"), "w"))
EOF
    for i in $(seq "$M"); do
        ("$bin" --root "$root" run -d --bundle "$W/bundle-d" "p$i" >/dev/null 2>&1 </dev/null || echo x >>"$W/pfail-$name") &
    done
    wait
    local running
    running=$("$bin" --root "$root" list -q 2>/dev/null | wc -l)
    for i in $(seq "$M"); do
        ("$bin" --root "$root" delete --force "p$i" >/dev/null 2>&1 || true) &
    done
    wait
    sleep 5
    after=$(count "$root")
    local pf
    pf=$(cat "$W/pfail-$name" 2>/dev/null | wc -l)
    read -r m0 c0 s0 z0 <<<"$before"
    read -r m1 c1 s1 z1 <<<"$after"
    printf '| %s | %d | %.2f | %d/%d | %d | %+d | %+d | %+d | %+d |\n' "$name" "$N" "$(echo "$t1 - $t0" | bc)" "$running" "$M" "$((fail + pf))" \
        $((m1 - m0)) $((c1 - c0)) $((s1 - s0)) $((z1 - z0))
}

echo "| runtime | sequential runs | time (s) | parallel running | failures | mounts Δ | cgroup dirs Δ | state entries Δ | zombies Δ |"
echo "|---|---|---|---|---|---|---|---|---|"
soak husk "$HUSK"
soak runc "$RUNC"
