#!/bin/bash
# bench/run.sh — the whole husk benchmark, one entry point (see docs/bench.md).
#
#   sudo bench/run.sh                 full run (~15 min on 2 cores)
#   QUICK=1 sudo bench/run.sh         few iterations, to check the script
#
# Installs the peers from Debian when missing (runc, crun, tini, tini-static,
# dumb-init, catatonit; GNU time), then prints a markdown report (also
# written to $OUT, default /var/tmp/husk-bench-report.md):
#   1. machine, date, load; binary sizes (husk on both arches, stripped)
#   2. husk vs runc vs crun, interleaved on one busybox bundle running
#      /bin/true: run with and without a network namespace, create / start /
#      delete separately, 100 sequential runs, peak RSS (bench/lib/rtbench.py)
#   3. inits: size, RSS while supervising, CPU to reap N orphans
#      (bench/init-reap.sh)
#   4. smallest memory limit a container starts under (bench/cgroup-min-memory.sh)
#   5. husk-rootfs import vs GNU tar (bench/rootfs-import.sh)
#   6. `husk run` under QEMU (system emulation) on both arches
#      (bench/lib/qemu-run.sh; kernels from cross/qemu/kernel.sh)
#
# Variables: HUSK_BIN_DIR (default dist/x86_64; built with cross/build.sh
# when missing), ITERS (runs per timed op, 40), SEQ_ROUNDS (rounds of 100
# runs, 3), RSS_ITERS (10), ORPHANS (10000), IMPORT_MB (100), QEMU_RUNS (runs per
# round in the guest, 20), SKIP="list of
# section numbers to leave out".
#
# crun 1.8 refuses this kind of host's hybrid cgroups (v1 controllers + a
# cgroup2 mount at /sys/fs/cgroup/unified). The runtime comparison therefore
# runs as a whole inside one private mount namespace where that cgroup2
# mount is unmounted: every runtime sees the same, pure-v1 layout, and no
# wrapper cost lands in anyone's timing.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

die() { echo "bench/run.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
command -v python3 >/dev/null || die "needs python3"

if [ -n "${QUICK:-}" ]; then
    : "${ITERS:=3}" "${SEQ_ROUNDS:=1}" "${RSS_ITERS:=2}" "${ORPHANS:=1000}" "${IMPORT_MB:=10}" "${INIT_ROUNDS:=1}" "${QEMU_RUNS:=5}"
fi
ITERS=${ITERS:-40}
SEQ_ROUNDS=${SEQ_ROUNDS:-3}
RSS_ITERS=${RSS_ITERS:-10}
ORPHANS=${ORPHANS:-10000}
IMPORT_MB=${IMPORT_MB:-100}
INIT_ROUNDS=${INIT_ROUNDS:-3}
QEMU_RUNS=${QEMU_RUNS:-20}
SKIP=" ${SKIP:-} "
OUT=${OUT:-/var/tmp/husk-bench-report.md}
skipped() { [[ "$SKIP" == *" $1 "* ]]; }

# ---- peers from Debian
want=()
for p in runc crun tini tini-static dumb-init catatonit time; do
    dpkg -s "$p" >/dev/null 2>&1 || want+=("$p")
done
if [ ${#want[@]} -gt 0 ]; then
    echo "== installing ${want[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "${want[@]}" >&2 ||
        { apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends "${want[@]}" >&2; } ||
        echo "SKIP: could not install ${want[*]}: those peers are left out" >&2
fi
[ -x /usr/bin/time ] || die "GNU time (/usr/bin/time) missing: apt-get install time"

# ---- husk binaries: a private copy, so a rebuild during the run changes nothing
BIN=${HUSK_BIN_DIR:-$REPO/dist/x86_64}
if [ ! -x "$BIN/husk" ]; then
    [ -z "${HUSK_BIN_DIR:-}" ] || die "no husk in $BIN"
    echo "== dist/x86_64 missing: ARCHES=x86_64 cross/build.sh" >&2
    ARCHES=x86_64 cross/build.sh >&2
fi
W=$(mktemp -d /var/tmp/husk-bench.XXXXXX)
cleanup() {
    for r in "$W"/state-*; do
        [ -d "$r" ] || continue
        for id in $(ls "$r" 2>/dev/null); do
            case $r in
            *husk) "$W/bin/husk" --root "$r" delete --force "$id" ;;
            *runc) runc --root "$r" delete --force "$id" ;;
            *crun) crun --root "$r" delete --force "$id" ;;
            esac >/dev/null 2>&1 || true
        done
    done
    # Cgroups a failed run may have left (ids are hb<pid>-<runtime>-<n>).
    find /sys/fs/cgroup -mindepth 1 -maxdepth 6 -type d -name 'hb[0-9]*-*-[0-9]*' 2>/dev/null | sort -r |
        while read -r d; do rmdir "$d" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/bin"
cp "$BIN/husk" "$BIN/husk-init" "$BIN/husk-rootfs" "$W/bin/"
H=$W/bin/husk

exec > >(tee "$OUT")

# ---- the bundle: busybox rootfs, /bin/true, no terminal
"$W/bin/husk-rootfs" busybox "$W/rootfs" >/dev/null
mkdir "$W/spec"
"$H" spec --bundle "$W/spec"
python3 - "$W" <<'EOF'
import copy, json, os, sys
w = sys.argv[1]
c = json.load(open(os.path.join(w, "spec", "config.json")))
c["root"] = {"path": os.path.join(w, "rootfs"), "readonly": True}
c["process"]["args"] = ["/bin/true"]
c["process"]["terminal"] = False
for net in (True, False):
    d = copy.deepcopy(c)
    if not net:
        d["linux"]["namespaces"] = [n for n in d["linux"]["namespaces"] if n["type"] != "network"]
    name = "bundle-" + ("net" if net else "nonet")
    for suffix, ver in (("", d["ociVersion"]), ("-crun", "1.0.2")):
        # crun 1.8 rejects newer ociVersion strings; nothing else differs.
        d["ociVersion"] = ver
        os.makedirs(os.path.join(w, name + suffix))
        json.dump(d, open(os.path.join(w, name + suffix, "config.json"), "w"), indent=1)
EOF

# ---- 1. machine and sizes
cgmode() {
    if grep -q ' - cgroup2 ' /proc/self/mountinfo && grep -q ' - cgroup cgroup' /proc/self/mountinfo; then echo "hybrid (v1 controllers + cgroup2)"
    elif grep -q ' - cgroup cgroup' /proc/self/mountinfo; then echo v1
    else echo v2; fi
}
ver() { "$@" 2>/dev/null | head -1 || echo "?"; }
echo "# husk benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "- machine: $(nproc) × $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r), $(. /etc/os-release; echo "$PRETTY_NAME"), cgroups $(cgmode)"
echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (a shared machine: medians, interleaved)"
echo "- $("$H" --version | head -1) ($(cd "$REPO" && git rev-parse --short HEAD)); $(ver runc --version); $(ver crun --version); tini $(dpkg-query -W -f '${Version}' tini 2>/dev/null); dumb-init $(dpkg-query -W -f '${Version}' dumb-init 2>/dev/null); catatonit $(dpkg-query -W -f '${Version}' catatonit 2>/dev/null)"
echo "- iterations: $ITERS per timed op, $SEQ_ROUNDS rounds of 100 runs, $RSS_ITERS RSS samples, $ORPHANS orphans × $INIT_ROUNDS rounds"
echo
if ! skipped 1; then
    echo "## Binary sizes"
    echo
    stripped() { # file → bytes after llvm-strip (any arch) or strip
        local t=$W/stripped
        { llvm-strip -o "$t" "$1" 2>/dev/null || strip -o "$t" "$1" 2>/dev/null; } && stat -c %s "$t" || echo "?"
    }
    linkage() {
        if readelf -l "$1" 2>/dev/null | grep -q 'program interpreter'; then
            echo "dynamic ($(readelf -d "$1" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ' | sed 's/ $//'))"
        else echo static; fi
    }
    echo "| binary | bytes | stripped | KiB (stripped) | linkage | ≤ 1 MiB |"
    echo "|---|---|---|---|---|---|"
    for f in "$W/bin/husk" "$REPO/dist/aarch64/husk" "$(command -v runc || true)" "$(command -v crun || true)" \
        "$W/bin/husk-init" "$REPO/dist/aarch64/husk-init" "$W/bin/husk-rootfs" "$REPO/dist/aarch64/husk-rootfs"; do
        [ -n "$f" ] && [ -e "$f" ] || continue
        f=$(readlink -f "$f")
        case $f in
        "$W"/bin/*) label="x86_64/$(basename "$f")" ;;
        "$REPO"/dist/aarch64/*) label="aarch64/$(basename "$f")" ;;
        *) label="$(basename "$f") (Debian)" ;;
        esac
        s=$(stripped "$f")
        budget="–"
        [ "$(basename "$f")" = husk ] && { [ "$s" -le 1048576 ] && budget=yes || budget=NO; }
        printf '| %s | %d | %s | %s | %s | %s |\n' "$label" "$(stat -c %s "$f")" "$s" \
            "$(awk -v s="$s" 'BEGIN { printf "%.0f", s/1024 }')" "$(linkage "$f")" "$budget"
    done
    echo
fi

# ---- 2. runtimes, interleaved, in one namespace without the cgroup2 mount
if ! skipped 2; then
    echo "## husk vs runc vs crun: /bin/true on a busybox bundle"
    echo
    rts=(husk)
    for r in runc crun; do command -v "$r" >/dev/null && rts+=("$r") || echo "SKIP: $r not installed" >&2; done
    echo "== runtimes: ${rts[*]} ($ITERS iterations, interleaved)" >&2
    unshare -m --propagation slave sh -c '
        if mountpoint -q /sys/fs/cgroup/unified && grep -q " /sys/fs/cgroup/[a-z]* .* - cgroup cgroup" /proc/self/mountinfo; then
            umount -l /sys/fs/cgroup/unified
        fi
        exec python3 "$@"' sh "$REPO/bench/lib/rtbench.py" "$W" "$H" "$ITERS" "$SEQ_ROUNDS" "$RSS_ITERS" "${rts[@]}"
    echo
    echo "Times are wall-clock ms of one runtime command (median (min–max)); the"
    echo "ratio is husk's median ÷ the peer's (< 1: husk is faster / smaller)."
    echo "Peak RSS is GNU time's %M: the largest RSS among the runtime process and"
    echo "the descendants it reaped: for \`run\` that includes the container's"
    echo "/bin/true (busybox); \`create\`, \`start\`, \`delete\` reap no container"
    echo "process, so they show the runtime's own peak."
    echo
fi

# ---- 3. inits
if ! skipped 3; then
    echo "## Inits: size, RSS while supervising, CPU to reap $ORPHANS orphans"
    echo
    echo "== inits ($ORPHANS orphans)" >&2
    N=$ORPHANS ROUNDS=$INIT_ROUNDS HUSK_INIT=$W/bin/husk-init INITS="husk-init tini tini-static dumb-init catatonit" \
        bench/init-reap.sh
    echo
    echo "Each init runs as PID 1 of a new PID namespace; a shell under it forks"
    echo "the orphans and waits until all are reaped; CPU is the init's own"
    echo "on-CPU time (/proc/PID/schedstat). RSS: VmRSS supervising \`sleep\`."
    echo
fi

# ---- 4. smallest memory limit
if ! skipped 4; then
    echo "## Smallest memory limit for \`run\` of /bin/true"
    echo
    echo "== cgroup-min-memory" >&2
    echo '```'
    HUSK_BIN_DIR=$W/bin bench/cgroup-min-memory.sh "$W/bin" || echo "(cgroup-min-memory.sh failed: status $?)"
    echo '```'
    echo
fi

# ---- 5. image import
if ! skipped 5; then
    echo "## husk-rootfs import vs GNU tar (${IMPORT_MB} MB image)"
    echo
    echo "== rootfs-import" >&2
    echo '```'
    HUSK_BIN_DIR=$W/bin bench/rootfs-import.sh "$IMPORT_MB" || echo "(rootfs-import.sh failed: status $?)"
    echo '```'
    echo
fi

# ---- 6. QEMU
if ! skipped 6; then
    echo "## \`husk run\` under QEMU"
    echo
    # qemu-user (qemu-ARCH-static) cannot run containers: it refuses clone()
    # with namespace flags (husk: "clone container init: Invalid argument"),
    # so this boots a guest (system emulation) that times `husk run`.
    echo "| guest arch | accelerator | ms per \`husk run\` (median of rounds) | min–max of rounds | runs |"
    echo "|---|---|---|---|---|"
    for arch in x86_64 aarch64; do
        echo "== QEMU $arch" >&2
        set +e
        bench/lib/qemu-run.sh "$arch" "$QEMU_RUNS" 2>"$W/qemu.err"
        st=$?
        set -e
        case $st in
        0) ;;
        77) echo "| $arch | SKIP: $(tail -1 "$W/qemu.err") | | | |"; echo "SKIP: QEMU $arch: $(tail -1 "$W/qemu.err")" >&2 ;;
        *) echo "| $arch | failed (status $st): $(grep -v '^ *$' "$W/qemu.err" | tail -1 | cut -c1-200) | | | |"; cat "$W/qemu.err" >&2 ;;
        esac
    done
    echo
    echo "Inside the guest: busybox bundle from the guest's own \`husk spec\`, cgroup2,"
    echo "one warm-up run, then rounds of $QEMU_RUNS runs timed with /proc/uptime."
    echo
fi
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg). Report: $OUT" >&2
