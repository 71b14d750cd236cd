#!/bin/bash
# Real clients driving an OCI runtime: podman (+conmon), containerd (+ctr
# and the io.containerd.runc.v2 shim) and Docker (dockerd 20.10 with its own
# containerd and shims), offline, with a busybox image made here.
#
#   tests/clients/clients.sh RUNTIME_BIN
#
# Prints one `PASS flow` / `FAIL flow: reason` line per flow, then
# `N passed, N failed`. Exit status 0 only when every flow passed.
#
# Everything lives under one `mktemp -d /tmp/husk-clients.XXXXXX` folder,
# inside a private mount + network namespace (unshare) with tmpfs over /run,
# /var/lib/cni and /var/lib/containers, so nothing the engines write to
# fixed paths reaches the host. Daemons, shims and conmons are stopped by
# PID; cgroups the engines made are emptied and removed. dockerd gets its own
# --data-root, --exec-root, --pidfile, socket and daemon.json under the temp
# folder, no bridge and no iptables rules.
#
# Environment:
#   CLIENTS_INIT=PATH     init binary for `podman run --init` (default: husk-init
#                         next to the runtime, else /usr/bin/catatonit)
#   CLIENTS_HUSK_ROOTFS=PATH  husk-rootfs used to build the image (default: next
#                         to the runtime, else dist/x86_64/husk-rootfs)
#   CLIENTS_TRACE=FILE    the runtime's argv is appended to FILE on every call
#   CLIENTS_TIMEOUT=N     time limit in seconds per engine command (default 60)
#   CLIENTS_KEEP=1        keep the temp folder
#   CLIENTS_ONLY=podman|containerd|docker   run one engine's flows only
#   CLIENTS_DOCKER=PATH   docker client (default /usr/bin/docker, Debian's)
#   CLIENTS_NO_INSTALL=1  never apt-get (missing tools make the flows fail)
set -u

die() { echo "clients.sh: $*" >&2; exit 2; }
[ $# -eq 1 ] || die "usage: clients.sh RUNTIME_BIN"
[ "$(id -u)" = 0 ] || die "needs root"
RT_REAL=$(readlink -f "$1") || die "runtime $1 not found"
[ -x "$RT_REAL" ] || die "runtime $1 is not executable"
HERE=$(cd "$(dirname "$0")" && pwd)
SELF="$HERE/$(basename "$0")"

if [ -z "${CLIENTS_INNER:-}" ]; then
    PKGS="containerd podman buildah skopeo busybox-static catatonit tini docker.io"
    missing=
    for c in containerd:containerd ctr:containerd podman:podman conmon:podman buildah:buildah \
             catatonit:catatonit tini-static:tini unshare:util-linux script:bsdutils dockerd:docker.io; do
        command -v "${c%%:*}" >/dev/null 2>&1 || missing=1
    done
    [ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q dynamic && missing=1
    if [ -n "$missing" ] && [ -z "${CLIENTS_NO_INSTALL:-}" ]; then
        echo "clients.sh: installing $PKGS" >&2
        export DEBIAN_FRONTEND=noninteractive
        # docker.io's postinst would start the host's dockerd (docker0,
        # iptables, /var/lib/docker): a policy-rc.d that refuses service
        # starts, for the install only, unless the host has one.
        prc=
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            prc=/usr/sbin/policy-rc.d
            printf '#!/bin/sh\nexit 101\n' >$prc && chmod +x $prc
        fi
        { apt-get install -y --no-install-recommends $PKGS || { apt-get update && apt-get install -y --no-install-recommends $PKGS; }; } >&2
        [ -n "$prc" ] && rm -f "$prc"
    fi
    command -v unshare >/dev/null || die "unshare missing"
    exec env CLIENTS_INNER=1 unshare --mount --net --propagation private -- bash "$SELF" "$RT_REAL"
fi

# ---------------------------------------------------------------- setup
TO=${CLIENTS_TIMEOUT:-60}
T=$(mktemp -d /tmp/husk-clients.XXXXXX)
# The engines write into their working directory (conmon leaves an "oom"
# file there after an OOM kill): work inside our temp folder.
cd "$T"
RTNAME=$(basename "$RT_REAL")
TAG=hc$$
PASSED=0 FAILED=0
CTD_PID=
DKD_PID=
mount -t tmpfs tmpfs /run
mkdir -p /var/lib/cni /var/lib/containers
mount -t tmpfs tmpfs /var/lib/cni
mount -t tmpfs tmpfs /var/lib/containers
ip link set lo up 2>/dev/null
CG_TOP_BEFORE=$(ls -a /sys/fs/cgroup)
# The cgroup hierarchies the engines write into: the v1 ones and the unified
# one on a v1 or hybrid host (/sys/fs/cgroup a tmpfs), /sys/fs/cgroup on a
# pure cgroup v2 host (the flows also run in cross/qemu/hostroot.sh's guest).
CG2=
if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then CG2=1 CG_TOPS=/sys/fs/cgroup/; else CG_TOPS="$(echo /sys/fs/cgroup/*/)"; fi
CONMON_TERM_BEFORE=$(ls -d /tmp/conmon-term.* 2>/dev/null)

# The runtime the engines see: the real binary, or an argv-logging wrapper
# with the same basename (podman picks global flags by runtime name).
mkdir -p "$T/rt"
if [ -n "${CLIENTS_TRACE:-}" ]; then
    RT="$T/rt/$RTNAME"
    printf '#!/bin/sh\necho "$PPID:$(cat /proc/$PPID/comm) $*" >>%q\nexec %q "$@"\n' "$CLIENTS_TRACE" "$RT_REAL" >"$RT"
    chmod +x "$RT"
else
    RT="$RT_REAL"
fi
INIT=${CLIENTS_INIT:-}
if [ -z "$INIT" ]; then
    if [ -x "$(dirname "$RT_REAL")/husk-init" ]; then INIT="$(dirname "$RT_REAL")/husk-init"; else INIT=/usr/bin/catatonit; fi
fi
HR=${CLIENTS_HUSK_ROOTFS:-}
if [ -z "$HR" ]; then
    if [ -x "$(dirname "$RT_REAL")/husk-rootfs" ]; then HR="$(dirname "$RT_REAL")/husk-rootfs"; else HR="$HERE/../../dist/x86_64/husk-rootfs"; fi
fi

pass() { echo "PASS $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $1: $2" | tr '\n' ' ' | cut -c1-600; FAILED=$((FAILED + 1)); }
# skip FLOW REASON: the machine lacks what FLOW needs (not counted).
skip() { echo "SKIP $1: $2"; }
# x CMD...: runs with a time limit, stdin from /dev/null; sets $code, $out
# (NUL and CR stripped), $err (last bytes, one line).
x() {
    timeout -k 5 "$TO" "$@" >"$T/out" 2>"$T/err" </dev/null
    code=$?
    out=$(tr -d '\0\r' <"$T/out")
    err=$(tail -c 400 "$T/err" | tr '\n' ' ')
}
# xs CMD...: the same through `script`, so CMD gets a terminal.
xs() {
    local q
    q=$(printf '%q ' "$@")
    timeout -k 5 "$TO" script -qec "$q" /dev/null >"$T/out" 2>"$T/err" </dev/null
    code=$?
    # ctr writes a NUL to the terminal, which echoes it as "^@".
    out=$(tr -d '\0\r' <"$T/out" | sed 's/^^@//')
    err=$(tail -c 400 "$T/err" | tr '\n' ' ')
}
why() { echo "exit $code, stdout [$(echo "$out" | tail -c 200 | tr '\n' ' ')], stderr [$err]"; }
# expect FLOW WANT_CODE WANT_STDOUT_REGEX: after an x/xs call.
expect() {
    if [ "$code" = "$2" ] && echo "$out" | grep -Eq -- "$3"; then pass "$1"; else fail "$1" "want exit $2 and /$3/; got $(why)"; fi
}

cleanup() {
    set +e
    if [ -n "$DKD_PID" ]; then
        kill -TERM "$DKD_PID" 2>/dev/null && { for _ in $(seq 100); do kill -0 "$DKD_PID" 2>/dev/null || break; sleep 0.1; done; kill -KILL "$DKD_PID" 2>/dev/null; }
    fi
    [ -n "$CTD_PID" ] && kill -TERM "$CTD_PID" 2>/dev/null && { for _ in $(seq 50); do kill -0 "$CTD_PID" 2>/dev/null || break; sleep 0.1; done; kill -KILL "$CTD_PID" 2>/dev/null; }
    # Shims, conmons and anything else started with our folder in its argv.
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        [ "$pid" = $$ ] && continue
        if tr "\\0" " " 2>/dev/null <"$p/cmdline" | grep -qF -- "$T"; then kill -KILL "$pid" 2>/dev/null; fi
    done
    # Container processes left in the engines' cgroups, then the cgroups.
    for top in $CG_TOPS; do
        for d in "$top$TAG" "${top}libpod_parent"; do
            [ -d "$d" ] || continue
            find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -KILL 2>/dev/null
        done
    done
    sleep 0.2
    for top in $CG_TOPS; do
        for d in "$top$TAG" "${top}libpod_parent"; do
            [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
        done
        # A plain folder in the /sys/fs/cgroup tmpfs (a controller that is
        # not mounted, see below): podman left $TAG/conmon/tasks in it.
        [ -n "$CG2" ] || mountpoint -q "$top" || rm -rf --one-file-system "$top$TAG"
    done
    # Plain folders podman made in the /sys/fs/cgroup tmpfs for unmounted
    # controllers (v1 and hybrid hosts).
    for e in $(ls -a /sys/fs/cgroup); do
        [ -z "$CG2" ] || break
        echo "$CG_TOP_BEFORE" | grep -qx -- "$e" && continue
        mountpoint -q "/sys/fs/cgroup/$e" || rm -rf --one-file-system "/sys/fs/cgroup/$e"
    done
    for c in $(ls -d /tmp/conmon-term.* 2>/dev/null); do
        echo "$CONMON_TERM_BEFORE" | grep -qx -- "$c" || rm -rf "$c"
    done
    # Overlay and shm mounts under our folder, deepest first.
    awk -v t="$T" '$5 == t || index($5, t "/") == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
    if [ -z "${CLIENTS_KEEP:-}" ]; then rm -rf --one-file-system "$T"; else echo "kept $T" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- image
IMG=localhost/husk-busybox:latest
if x "$HR" busybox "$T/rootfs" && [ "$code" = 0 ] && x "$HR" pack "$T/rootfs" "$T/busybox.tar" && [ "$code" = 0 ]; then
    pass rootfs
else
    fail rootfs "husk-rootfs busybox/pack: $(why)"
fi

# A folder the flows bind-mount read-only.
mkdir -p "$T/vol" && echo in-vol >"$T/vol/f"

# ---------------------------------------------------------------- podman
podman_flows() {
    mkdir -p "$T"/pm/{root,runroot,tmp,conf,cni} "$T/home/.config/containers"
    echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$T/home/.config/containers/policy.json"
    echo 'unqualified-search-registries = []' >"$T/pm/conf/registries.conf"
    printf '[storage]\ndriver = "overlay"\nrunroot = "%s"\ngraphroot = "%s"\n' "$T/pm/runroot" "$T/pm/root" >"$T/pm/conf/storage.conf"
    local ulimits=
    # Without CAP_SYS_RESOURCE the 1048576 nofile/nproc podman asks for
    # cannot be set: ask for what this process may have.
    local eff
    eff=$(awk '/^CapEff/ {print $2}' /proc/self/status)
    if (( (0x$eff >> 24 & 1) == 0 )); then
        local n u
        n=$(ulimit -Hn); u=$(ulimit -Hu); [ "$u" = unlimited ] || [ "$u" -gt 32768 ] && u=32768
        ulimits="default_ulimits = [\"nofile=$n:$n\", \"nproc=$u:$u\"]"
    fi
    cat >"$T/pm/conf/containers.conf" <<EOF
[containers]
$ulimits
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
[network]
network_config_dir = "$T/pm/cni"
EOF
    export HOME=$T/home TMPDIR=$T/pm/tmp CONTAINERS_CONF=$T/pm/conf/containers.conf \
        CONTAINERS_REGISTRIES_CONF=$T/pm/conf/registries.conf CONTAINERS_STORAGE_CONF=$T/pm/conf/storage.conf
    local PD=(podman --root "$T/pm/root" --runroot "$T/pm/runroot" --storage-driver overlay --cgroup-manager cgroupfs
        --events-backend file --tmpdir "$T/pm/tmp")
    P=("${PD[@]}" --runtime "$RT")
    local CGP=(--cgroup-parent "/$TAG")

    x "${P[@]}" import "$T/busybox.tar" "$IMG"
    if [ "$code" = 0 ]; then pass podman-import; else fail podman-import "$(why)"; fi
    x "${P[@]}" info --format '{{.Host.OCIRuntime.Path}}'
    expect podman-info 0 "$RTNAME"
    x "${P[@]}" run --rm "${CGP[@]}" "$IMG" echo hi
    expect podman-run-echo 0 '^hi$'
    x "${P[@]}" run --rm "${CGP[@]}" "$IMG" sh -c 'exit 3'
    expect podman-exit-code 3 ''
    code=0
    out=$(echo piped | timeout -k 5 "$TO" "${P[@]}" run --rm -i "${CGP[@]}" "$IMG" cat 2>"$T/err") || code=$?
    err=$(tail -c 400 "$T/err" | tr '\n' ' ')
    expect podman-stdin 0 '^piped$'
    xs "${P[@]}" run --rm -t "${CGP[@]}" "$IMG" sh -c 'tty; [ -t 0 ] && echo interactive'
    expect podman-tty 0 '^/dev/pts/[0-9]+'
    x "${P[@]}" run -d --name d1 "${CGP[@]}" "$IMG" sh -c 'echo started; exec sleep 100'
    expect podman-run-detached 0 '^[0-9a-f]{64}$'
    x "${P[@]}" exec d1 sh -c 'echo in-$(hostname); exit 5'
    expect podman-exec 5 '^in-'
    x "${P[@]}" exec -u 1000:1000 -w /tmp -e FOO=bar d1 sh -c 'echo $(id -u):$(id -g) $(pwd) $FOO'
    expect podman-exec-user 0 '^1000:1000 /tmp bar$'
    x "${P[@]}" exec d1 /no/such/program
    local ec=$code ee=$err
    x "${P[@]}" exec d1 true
    if [ "$ec" = 127 ] && [ "$code" = 0 ]; then pass podman-exec-missing; else fail podman-exec-missing "want 127 then 0; got $ec [$ee], then $(why)"; fi
    xs "${P[@]}" exec -t d1 tty
    expect podman-exec-tty 0 '^/dev/pts/[0-9]+'
    x "${P[@]}" logs d1
    expect podman-logs 0 '^started$'
    local paused=
    x "${P[@]}" pause d1 && [ "$code" = 0 ] && x "${P[@]}" inspect --format '{{.State.Status}}' d1 && paused=$out
    x "${P[@]}" unpause d1
    if [ "$paused" = paused ] && [ "$code" = 0 ]; then pass podman-pause; else fail podman-pause "state [$paused]; unpause $(why)"; fi
    x "${P[@]}" stop -t 2 d1
    local sc=$code
    x "${P[@]}" inspect --format '{{.State.Status}} {{.State.ExitCode}}' d1
    if [ "$sc" = 0 ] && echo "$out" | grep -Eq '^(exited|stopped) 137$'; then pass podman-stop; else fail podman-stop "stop exit $sc; inspect $(why)"; fi
    x "${P[@]}" rm d1
    local rc=$code
    x "${P[@]}" ps -a --format '{{.Names}}'
    if [ "$rc" = 0 ] && ! echo "$out" | grep -qx d1; then pass podman-rm; else fail podman-rm "rm exit $rc; ps -a [$out]"; fi
    # --init with the chosen init binary bind-mounted at /run/podman-init.
    x "${P[@]}" run --rm --init --init-path "$INIT" "${CGP[@]}" "$IMG" sh -c 'tr "\0" " " </proc/1/cmdline; echo; echo pid=$$'
    local want_md5
    want_md5=$(md5sum <"$INIT" | cut -d' ' -f1)
    if [ "$code" = 0 ] && echo "$out" | grep -q '^/run/podman-init -- sh' && echo "$out" | grep -Eq '^pid=([2-9]|[1-9][0-9]+)$'; then
        x "${P[@]}" run --rm --init --init-path "$INIT" "${CGP[@]}" "$IMG" md5sum /run/podman-init
        expect podman-init 0 "^$want_md5 "
    else
        fail podman-init "want PID 1 = /run/podman-init -- sh, sh not PID 1; got $(why)"
    fi
    x "${P[@]}" run --rm "${CGP[@]}" "$IMG" /no/such/program
    if [ "$code" = 127 ] && echo "$err" | grep -q /no/such/program; then pass podman-run-missing; else fail podman-run-missing "want 127 naming the program; got $(why)"; fi
    x "${P[@]}" run --rm --memory 4m "${CGP[@]}" "$IMG" sh -c 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max'
    expect podman-memory 0 '^4194304$'
    x "${P[@]}" run --rm --memory 4m --memory-swap 4m "${CGP[@]}" "$IMG" sh -c 'x=$(head -c 20000000 /dev/zero | tr "\0" a); echo survived'
    expect podman-oom 137 ''
    x "${P[@]}" run --rm "${CGP[@]}" "$IMG" sh -c 'ip -o -4 addr show eth0'
    expect podman-network 0 'inet [0-9.]+'
    # A user namespace: podman maps root to 100000 and chowns its copy of
    # the image; the container's root owns its files, the host sees 100000.
    x "${P[@]}" run --rm --uidmap 0:100000:65536 --gidmap 0:100000:65536 "${CGP[@]}" "$IMG" \
        sh -c 'cat /proc/self/uid_map | tr -s " " " "; id -u; touch /x && stat -c %u /x; grep CapEff /proc/self/status | tr -s "\t" " "'
    if [ "$code" = 0 ] && [ "$(echo $out)" = "0 100000 65536 0 0 CapEff: 00000000a80425fb" ]; then
        pass podman-userns
    else
        fail podman-userns "want [0 100000 65536 0 0 CapEff: 00000000a80425fb]; got $(why)"
    fi
    # A pod: the infra container (catatonit) holds the namespaces, members
    # join them by path.
    x "${P[@]}" pod create --name p1 "${CGP[@]}"
    local pc=$code pe=$err
    x "${P[@]}" run -d --pod p1 --name pc1 "$IMG" sleep 100
    x "${P[@]}" exec pc1 sh -c 'for n in net ipc uts; do readlink /proc/self/ns/$n; done'
    local pns=$out
    x "${P[@]}" run --rm --pod p1 "$IMG" sh -c 'for n in net ipc uts; do readlink /proc/self/ns/$n; done'
    if [ "$pc" = 0 ] && [ -n "$pns" ] && [ "$code" = 0 ] && [ "$out" = "$pns" ]; then pass podman-pod; else fail podman-pod "pod create $pc [$pe]; member [$(echo $pns)]; second $(why)"; fi
    x "${P[@]}" pod rm -f p1
    # The runtime as podman's default, set in containers.conf the way
    # docs/clients.md tells (no --runtime), with its name in
    # runtime_supports_json so conmon passes --log-format=json --log FILE.
    sed -e '/^\[engine\]/a runtime = "'"$RTNAME"'"\nruntime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "husk"]' \
        "$T/pm/conf/containers.conf" >"$T/pm/conf/default-runtime.conf"
    printf '[engine.runtimes]\n%s = ["%s"]\n' "$RTNAME" "$RT" >>"$T/pm/conf/default-runtime.conf"
    x env CONTAINERS_CONF="$T/pm/conf/default-runtime.conf" "${PD[@]}" info --format '{{.Host.OCIRuntime.Path}}'
    local info=$out
    x env CONTAINERS_CONF="$T/pm/conf/default-runtime.conf" "${PD[@]}" run --rm "${CGP[@]}" "$IMG" echo hi
    local c1=$code o1=$out
    x env CONTAINERS_CONF="$T/pm/conf/default-runtime.conf" "${PD[@]}" run --rm "${CGP[@]}" "$IMG" /no/such/program
    if [ "$info" = "$RT" ] && [ "$c1" = 0 ] && [ "$o1" = hi ] && [ "$code" = 127 ] && echo "$err" | grep -q /no/such/program; then
        pass podman-default-runtime
    else
        fail podman-default-runtime "info [$info] (want $RT), echo $c1 [$o1], missing program $(why)"
    fi
}

# ---------------------------------------------------------------- containerd
containerd_flows() {
    mkdir -p "$T"/ctd/{root,state,opt,rtroot,fifo,tmp} "$T"/bh/{root,runroot}
    cat >"$T/ctd/config.toml" <<EOF
version = 2
root = "$T/ctd/root"
state = "$T/ctd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$T/ctd/containerd.sock"
[ttrpc]
  address = ""
[debug]
  address = ""
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$T/ctd/opt"
EOF
    TMPDIR=$T/ctd/tmp containerd --config "$T/ctd/config.toml" >"$T/ctd/containerd.log" 2>&1 &
    CTD_PID=$!
    local i
    for i in $(seq 200); do [ -S "$T/ctd/containerd.sock" ] && break; kill -0 $CTD_PID 2>/dev/null || break; sleep 0.1; done
    if [ -S "$T/ctd/containerd.sock" ]; then pass containerd-start; else fail containerd-start "$(tail -c 300 "$T/ctd/containerd.log")"; return; fi

    # OCI archive: buildah unpacks the tarball into a scratch image.
    local B=(buildah --root "$T/bh/root" --runroot "$T/bh/runroot" --storage-driver overlay)
    local c ok=
    x "${B[@]}" from scratch; c=$out
    if [ "$code" = 0 ] && x "${B[@]}" add "$c" "$T/busybox.tar" / && [ "$code" = 0 ] &&
        x "${B[@]}" config --cmd '["/bin/sh"]' --env PATH=/usr/sbin:/usr/bin:/sbin:/bin "$c" && [ "$code" = 0 ] &&
        x "${B[@]}" commit "$c" "$IMG" && [ "$code" = 0 ] &&
        x "${B[@]}" push "$IMG" "oci-archive:$T/busybox-oci.tar:$IMG" && [ "$code" = 0 ]; then
        ok=1; pass oci-archive
    else
        fail oci-archive "$(why)"
    fi
    C=(ctr -a "$T/ctd/containerd.sock" -n "$TAG")
    R=(--runc-binary "$RT" --runc-root "$T/ctd/rtroot" --fifo-dir "$T/ctd/fifo")
    x "${C[@]}" image import "$T/busybox-oci.tar"
    x "${C[@]}" image ls -q
    expect ctr-import 0 "^$IMG\$"
    x "${C[@]}" run --rm "${R[@]}" "$IMG" c1 echo hi
    expect ctr-run-echo 0 '^hi$'
    x "${C[@]}" run --rm "${R[@]}" "$IMG" c2 sh -c 'exit 3'
    expect ctr-exit-code 3 ''
    x "${C[@]}" run -d "${R[@]}" "$IMG" d1 sh -c 'echo started; exec sleep 100'
    local rc=$code
    x "${C[@]}" task ls
    if [ "$rc" = 0 ] && echo "$out" | grep -Eq '^d1 +[0-9]+ +RUNNING'; then pass ctr-run-detached; else fail ctr-run-detached "run exit $rc; task ls $(why)"; fi
    x "${C[@]}" task exec --fifo-dir "$T/ctd/fifo" --exec-id e1 d1 sh -c 'echo in-exec; exit 5'
    expect ctr-exec 5 '^in-exec$'
    x "${C[@]}" task exec --fifo-dir "$T/ctd/fifo" --exec-id e3 d1 /no/such/program
    local ec=$code ee=$err
    x "${C[@]}" task exec --fifo-dir "$T/ctd/fifo" --exec-id e4 d1 true
    if [ "$ec" != 0 ] && echo "$ee" | grep -q /no/such/program && [ "$code" = 0 ]; then pass ctr-exec-missing; else fail ctr-exec-missing "want an error naming the program, then exit 0; got $ec [$ee], then $(why)"; fi
    xs "${C[@]}" task exec -t --fifo-dir "$T/ctd/fifo" --exec-id e2 d1 tty
    expect ctr-exec-tty 0 '^/dev/pts/[0-9]+'
    x "${C[@]}" task ps d1
    if [ "$code" = 0 ] && [ "$(echo "$out" | grep -Ec '^[0-9]+ ')" -ge 1 ]; then pass ctr-ps; else fail ctr-ps "$(why)"; fi
    local st1 st2
    x "${C[@]}" task pause d1 && x "${C[@]}" task ls && st1=$(echo "$out" | awk '$1 == "d1" {print $3}')
    x "${C[@]}" task resume d1 && x "${C[@]}" task ls && st2=$(echo "$out" | awk '$1 == "d1" {print $3}')
    if [ "$st1" = PAUSED ] && [ "$st2" = RUNNING ]; then pass ctr-pause; else fail ctr-pause "states [$st1] [$st2]; $(why)"; fi
    x "${C[@]}" task kill -s SIGKILL d1
    rc=$code
    local st=
    for i in $(seq 100); do
        x "${C[@]}" task ls; st=$(echo "$out" | awk '$1 == "d1" {print $3}')
        [ "$st" = STOPPED ] && break; sleep 0.1
    done
    if [ "$rc" = 0 ] && [ "$st" = STOPPED ]; then pass ctr-kill; else fail ctr-kill "kill exit $rc; state [$st]"; fi
    x "${C[@]}" task delete d1
    rc=$code
    x "${C[@]}" container rm d1
    local rc2=$code
    x "${C[@]}" task ls -q
    if [ "$rc" = 0 ] && [ "$rc2" = 0 ] && ! echo "$out" | grep -qx d1 && [ -z "$(ls -A "$T/ctd/rtroot/$TAG" 2>/dev/null)" ]; then
        pass ctr-delete
    else
        fail ctr-delete "task delete $rc, container rm $rc2, tasks [$out], runtime state [$(ls "$T/ctd/rtroot/$TAG" 2>/dev/null)]"
    fi
    xs "${C[@]}" run --rm -t "${R[@]}" "$IMG" t1 sh -c 'tty; exit 4'
    expect ctr-tty 4 '^/dev/pts/[0-9]+'
    x "${C[@]}" run --rm "${R[@]}" "$IMG" c3 /no/such/program
    if [ "$code" != 0 ] && echo "$err" | grep -q /no/such/program; then pass ctr-run-missing; else fail ctr-run-missing "want an error naming the program; got $(why)"; fi
    x "${C[@]}" container ls -q
    echo "$out" | grep -qx c3 && x "${C[@]}" container rm c3
    x "${C[@]}" run --rm "${R[@]}" --memory-limit 4194304 "$IMG" m1 sh -c 'x=$(head -c 20000000 /dev/zero | tr "\0" a); echo survived'
    expect ctr-memory 137 ''
    # A flat rootfs folder (no image, no snapshot), a bind mount, a network
    # namespace joined by path, and env.
    ip netns add "hk$TAG" 2>/dev/null
    local nsw
    nsw=$(ip netns exec "hk$TAG" readlink /proc/self/ns/net 2>/dev/null)
    x "${C[@]}" run --rm "${R[@]}" --mount "type=bind,src=$T/vol,dst=/data,options=rbind:ro" \
        --with-ns "network:/run/netns/hk$TAG" --env FOO=bar --rootfs "$T/rootfs" f1 \
        /bin/sh -c 'cat /data/f; touch /data/g 2>/dev/null || echo ro; readlink /proc/self/ns/net; echo $FOO'
    if [ "$code" = 0 ] && [ -n "$nsw" ] && [ "$(echo $out)" = "in-vol ro $nsw bar" ]; then
        pass ctr-rootfs-options
    else
        fail ctr-rootfs-options "want [in-vol ro $nsw bar]; got $(why)"
    fi
    ip netns del "hk$TAG" 2>/dev/null
    # kill --all: every process of a container that shares the host's PID
    # namespace (no PID 1 of its own to take the rest down).
    x "${C[@]}" run -d "${R[@]}" --with-ns "pid:/proc/$$/ns/pid" "$IMG" a1 sh -c 'sleep 101 & exec sleep 102'
    local pids rc3=$code re3=$err sl='^sleep 10[12]$'
    sleep 0.5
    pids=$(pgrep -f "$sl" | tr '\n' ' ')
    x "${C[@]}" task kill -a -s SIGKILL a1
    local kc=$code ke=$err
    for i in $(seq 50); do pgrep -f "$sl" >/dev/null || break; sleep 0.1; done
    if [ "$kc" = 0 ] && [ "$(echo $pids | wc -w)" = 2 ] && ! pgrep -f "$sl" >/dev/null; then
        pass ctr-kill-all
    else
        fail ctr-kill-all "run -d $rc3 [$re3]; kill -a exit $kc [$ke]; sleeps before [$pids], after [$(pgrep -f "$sl" | tr '\n' ' ')]"
    fi
    x "${C[@]}" task delete a1
    x "${C[@]}" container rm a1
    kill -TERM $CTD_PID
    for i in $(seq 100); do kill -0 $CTD_PID 2>/dev/null || break; sleep 0.1; done
    if kill -0 $CTD_PID 2>/dev/null; then fail containerd-stop "still running after 10 s"; else pass containerd-stop; CTD_PID=; fi
}

# ---------------------------------------------------------------- docker
# dockerd 20.10 with its own containerd (started as its child: no
# --containerd), every path under $T, no bridge, no iptables. The runtime
# under test is registered by its basename; `runc` is docker's built-in
# runtime name (reserved in daemon.json), so for runc dockerd gets a PATH
# whose first `runc` is the runtime under test.
# cg_file PID CONTROLLER FILE: a v1 cgroup file of a process, read from the host.
cg_file() {
    local p
    p=$(awk -F: -v c="$2" '{n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3}' "/proc/$1/cgroup" 2>/dev/null)
    cat "/sys/fs/cgroup/$2$p/$3" 2>/dev/null || echo "?"
}
# cg2_file PID FILE: a cgroup v2 file of a process, read from the host.
cg2_file() {
    local p
    p=$(sed -n 's/^0:://p' "/proc/$1/cgroup" 2>/dev/null)
    cat "/sys/fs/cgroup$p/$2" 2>/dev/null || echo "?"
}
# poll SECS CMD...: until CMD succeeds, every 0.2 s; the status of the last try.
poll() {
    local n=$(($1 * 5))
    shift
    while ! "$@"; do
        n=$((n - 1))
        [ "$n" -gt 0 ] || return 1
        sleep 0.2
    done
}
docker_flows() {
    local DK=${CLIENTS_DOCKER:-/usr/bin/docker}
    [ -x "$DK" ] || DK=$(command -v docker)
    mkdir -p "$T"/dk/{root,exec,cfg,bin,tmp}
    export DOCKER_CONFIG=$T/dk/cfg
    unset DOCKER_HOST DOCKER_CONTEXT
    local DRT=$RTNAME runtimes=
    if [ "$RTNAME" = runc ]; then
        ln -sf "$RT" "$T/dk/bin/runc"
    else
        runtimes="\"$RTNAME\": {\"path\": \"$RT\"}"
    fi
    cat >"$T/dk/daemon.json" <<EOJ
{
  "runtimes": {$runtimes},
  "default-runtime": "$DRT",
  "init-path": "$INIT",
  "exec-opts": ["native.cgroupdriver=cgroupfs"],
  "cgroup-parent": "/$TAG",
  "userland-proxy": false,
  "deprecated-key-path": "$T/dk/key.json",
  "log-level": "info"
}
EOJ
    PATH="$T/dk/bin:$PATH" TMPDIR=$T/dk/tmp dockerd --config-file "$T/dk/daemon.json" --data-root "$T/dk/root" --exec-root "$T/dk/exec" \
        --pidfile "$T/dk/docker.pid" -H "unix://$T/dk/docker.sock" --bridge=none --iptables=false --ip-masq=false >"$T/dk/dockerd.log" 2>&1 &
    DKD_PID=$!
    D=("$DK" -H "unix://$T/dk/docker.sock")
    local i
    for i in $(seq 300); do
        [ -S "$T/dk/docker.sock" ] && "${D[@]}" version >/dev/null 2>&1 && break
        kill -0 $DKD_PID 2>/dev/null || break
        sleep 0.1
    done
    x "${D[@]}" info --format '{{.DefaultRuntime}} {{.CgroupDriver}} {{range $k, $v := .Runtimes}}{{$k}},{{end}}'
    if [ "$code" = 0 ] && echo "$out" | grep -Eq "^$DRT cgroupfs (.*,)?$DRT,"; then
        pass docker-start
    else
        fail docker-start "info $(why); dockerd log: $(tail -c 300 "$T/dk/dockerd.log")"
        return
    fi
    local NN=(--runtime "$DRT" --network none)
    x "${D[@]}" import -c 'CMD ["/bin/sh"]' "$T/busybox.tar" "$IMG"
    local ic=$code
    x "${D[@]}" image ls --format '{{.Repository}}:{{.Tag}}'
    if [ "$ic" = 0 ] && echo "$out" | grep -qx "$IMG"; then pass docker-import; else fail docker-import "import exit $ic; image ls $(why)"; fi

    x "${D[@]}" run --rm "${NN[@]}" "$IMG" echo hi
    expect docker-run-echo 0 '^hi$'
    x "${D[@]}" run --rm "${NN[@]}" "$IMG" sh -c 'exit 3'
    expect docker-exit-code 3 ''
    # The docker CLI gives 127 when the error has "no such file or directory"
    # (case-sensitive), 126 for "permission denied", else 125.
    x "${D[@]}" run --rm "${NN[@]}" "$IMG" /no/such/program
    local mc=$code me=$err
    x "${D[@]}" run --rm "${NN[@]}" "$IMG" /etc/passwd
    local pc=$code pe=$err
    x "${D[@]}" run --rm "${NN[@]}" "$IMG" /tmp
    if [ "$mc" = 127 ] && echo "$me" | grep -q /no/such/program && [ "$pc" = 126 ] && echo "$pe" | grep -q /etc/passwd &&
        [ "$code" = 126 ] && echo "$err" | grep -q /tmp; then
        pass docker-run-missing
    else
        fail docker-run-missing "want 127 naming the program, 126 for a plain file and for a directory; got $mc [$me], $pc [$pe], then $(why)"
    fi
    code=0
    out=$(echo piped | timeout -k 5 "$TO" "${D[@]}" run --rm -i "${NN[@]}" "$IMG" cat 2>"$T/err") || code=$?
    err=$(tail -c 400 "$T/err" | tr '\n' ' ')
    expect docker-stdin 0 '^piped$'
    xs "${D[@]}" run --rm -it "${NN[@]}" "$IMG" sh -c 'tty; [ -t 0 ] && echo interactive; exit 4'
    if [ "$code" = 4 ] && echo "$out" | grep -Eq '^/dev/pts/[0-9]+$' && echo "$out" | grep -qx interactive; then pass docker-tty; else fail docker-tty "want /dev/pts/N, interactive, exit 4; got $(why)"; fi
    # Docker's default (no --runtime): default-runtime from daemon.json.
    x "${D[@]}" run --name dr --network none "$IMG" sh -c 'echo default'
    local c1=$code o1=$out
    x "${D[@]}" inspect --format '{{.HostConfig.Runtime}}' dr
    if [ "$c1" = 0 ] && [ "$o1" = default ] && [ "$out" = "$DRT" ]; then pass docker-default-runtime; else fail docker-default-runtime "run $c1 [$o1]; runtime $(why)"; fi
    x "${D[@]}" rm dr

    # A long-running container: exec, logs, top, stats, cp, export, pause, stop, rm.
    x "${D[@]}" run -d --name d1 "${NN[@]}" "$IMG" sh -c 'echo started; echo to-stderr >&2; exec sleep 100'
    expect docker-run-detached 0 '^[0-9a-f]{64}$'
    x "${D[@]}" exec d1 sh -c 'echo in-$(hostname); exit 5'
    expect docker-exec 5 '^in-'
    x "${D[@]}" exec -u 1000:1000 -w /tmp -e FOO=bar d1 sh -c 'echo $(id -u):$(id -g) $(pwd) $FOO'
    expect docker-exec-user 0 '^1000:1000 /tmp bar$'
    # docker exec prints the runtime's error on stdout, exit 126.
    x "${D[@]}" exec d1 /no/such/program
    local ec=$code ee="$out $err"
    x "${D[@]}" exec d1 true
    if [ "$ec" = 126 ] && echo "$ee" | grep -q '"/no/such/program".*no such file or directory' && [ "$code" = 0 ]; then
        pass docker-exec-missing
    else
        fail docker-exec-missing "want 126 naming the program, then 0; got $ec [$ee], then $(why)"
    fi
    xs "${D[@]}" exec -it d1 sh -c 'tty; exit 6'
    if [ "$code" = 6 ] && echo "$out" | grep -Eq '^/dev/pts/[0-9]+$'; then pass docker-exec-tty; else fail docker-exec-tty "want /dev/pts/N, exit 6; got $(why)"; fi
    x "${D[@]}" logs d1
    if [ "$code" = 0 ] && [ "$out" = started ] && grep -qx to-stderr "$T/err"; then pass docker-logs; else fail docker-logs "want started / to-stderr on the two streams; got $(why)"; fi
    x "${D[@]}" top d1
    if [ "$code" = 0 ] && echo "$out" | grep -q 'sleep 100'; then pass docker-top; else fail docker-top "$(why)"; fi
    x "${D[@]}" stats --no-stream --format '{{.Name}} {{.MemUsage}} {{.PIDs}}' d1
    expect docker-stats 0 '^d1 [0-9.]+[kKMG]i?B / [0-9.]+[kKMGT]i?B [1-9][0-9]*$'
    echo copied-in >"$T/dk/cp-in"
    x "${D[@]}" cp "$T/dk/cp-in" d1:/tmp/cp-in
    local cin=$code
    x "${D[@]}" exec d1 sh -c 'cat /tmp/cp-in; echo copied-out >/tmp/cp-out'
    local cin2=$out
    x "${D[@]}" cp d1:/tmp/cp-out "$T/dk/cp-out"
    if [ "$cin" = 0 ] && [ "$cin2" = copied-in ] && [ "$code" = 0 ] && [ "$(cat "$T/dk/cp-out" 2>/dev/null)" = copied-out ]; then
        pass docker-cp
    else
        fail docker-cp "cp in exit $cin, read back [$cin2]; cp out $(why), file [$(cat "$T/dk/cp-out" 2>/dev/null)]"
    fi
    x "${D[@]}" export -o "$T/dk/export.tar" d1
    if [ "$code" = 0 ] && tar -tf "$T/dk/export.tar" 2>/dev/null | grep -qx 'tmp/cp-out' && tar -tf "$T/dk/export.tar" | grep -qx 'bin/busybox'; then
        pass docker-export
    else
        fail docker-export "$(why); tar has [$(tar -tf "$T/dk/export.tar" 2>&1 | grep -E 'busybox|cp-out' | tr '\n' ' ')]"
    fi
    local paused= running=
    x "${D[@]}" pause d1 && [ "$code" = 0 ] && x "${D[@]}" inspect --format '{{.State.Status}}' d1 && paused=$out
    x "${D[@]}" unpause d1 && [ "$code" = 0 ] && x "${D[@]}" inspect --format '{{.State.Status}}' d1 && running=$out
    x "${D[@]}" exec d1 true
    if [ "$paused" = paused ] && [ "$running" = running ] && [ "$code" = 0 ]; then pass docker-pause; else fail docker-pause "states [$paused] [$running]; exec after $(why)"; fi
    x "${D[@]}" stop -t 2 d1
    local sc=$code
    x "${D[@]}" inspect --format '{{.State.Status}} {{.State.ExitCode}}' d1
    if [ "$sc" = 0 ] && [ "$out" = "exited 137" ]; then pass docker-stop; else fail docker-stop "stop exit $sc; inspect $(why)"; fi
    x "${D[@]}" rm d1
    local rc=$code
    x "${D[@]}" ps -a --format '{{.Names}}'
    if [ "$rc" = 0 ] && ! echo "$out" | grep -qx d1; then pass docker-rm; else fail docker-rm "rm exit $rc; ps -a [$out]"; fi

    # --restart on-failure:3: three restarts, then it stays exited.
    x "${D[@]}" run -d --name r1 --restart on-failure:3 "${NN[@]}" "$IMG" sh -c 'echo run; exit 1'
    local st=
    restarted() { x "${D[@]}" inspect --format '{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}' r1; st=$out; [ "$st" = "exited 3 1" ]; }
    poll 20 restarted
    x "${D[@]}" logs r1
    if [ "$st" = "exited 3 1" ] && [ "$(echo "$out" | grep -cx run)" = 4 ]; then pass docker-restart; else fail docker-restart "want [exited 3 1] and 4 runs; got [$st], logs [$(echo $out)]"; fi
    x "${D[@]}" rm -f r1

    # A healthcheck runs through exec: one healthy, one unhealthy.
    local H=(--health-interval 1s --health-timeout 5s --health-retries 1)
    x "${D[@]}" run -d --name h1 "${H[@]}" --health-cmd 'test -e /tmp/ok' "${NN[@]}" "$IMG" sh -c 'touch /tmp/ok; exec sleep 100'
    x "${D[@]}" run -d --name h2 "${H[@]}" --health-cmd 'exit 1' "${NN[@]}" "$IMG" sleep 100
    local h1= h2=
    health() {
        x "${D[@]}" inspect --format '{{.State.Health.Status}}' h1; h1=$out
        x "${D[@]}" inspect --format '{{.State.Health.Status}}' h2; h2=$out
        [ "$h1" = healthy ] && [ "$h2" = unhealthy ]
    }
    poll 15 health
    if [ "$h1" = healthy ] && [ "$h2" = unhealthy ]; then pass docker-healthcheck; else fail docker-healthcheck "want healthy/unhealthy; got [$h1] [$h2]"; fi
    x "${D[@]}" rm -f h1 h2

    # Limits.
    x "${D[@]}" run --name oom1 --memory 8m "${NN[@]}" "$IMG" sh -c 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; x=$(head -c 40000000 /dev/zero | tr "\0" a); echo survived'
    local oc=$code oo=$out
    x "${D[@]}" inspect --format '{{.State.ExitCode}} {{.State.OOMKilled}}' oom1
    if [ "$oc" = 137 ] && [ "$oo" = 8388608 ] && [ "$out" = "137 true" ]; then pass docker-oom; else fail docker-oom "run exit $oc [$oo] (want 137 [8388608]); inspect $(why)"; fi
    x "${D[@]}" rm oom1
    x "${D[@]}" run --rm --pids-limit 5 "${NN[@]}" "$IMG" sh -c 'cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; for i in 1 2 3 4 5 6 7 8; do sleep 2 & done; wait'
    if [ "$out" = 5 ] && echo "$err" | grep -q "can't fork"; then pass docker-pids-limit; else fail docker-pids-limit "want pids.max 5 and a failed fork; got $(why)"; fi
    x "${D[@]}" run --rm --read-only --tmpfs /run "${NN[@]}" "$IMG" sh -c 'touch /x 2>&1; echo rc=$?; touch /run/y && echo tmpfs-ok'
    if [ "$code" = 0 ] && echo "$out" | grep -q 'Read-only file system' && echo "$out" | grep -qx 'rc=1' && echo "$out" | grep -qx tmpfs-ok; then
        pass docker-read-only
    else
        fail docker-read-only "$(why)"
    fi
    x "${D[@]}" run --rm --cap-drop ALL "${NN[@]}" "$IMG" sh -c 'grep CapEff /proc/self/status; chown 1 /tmp 2>/dev/null; echo chown=$?'
    local o_all=$out c_all=$code
    x "${D[@]}" run --rm --cap-drop ALL --cap-add CHOWN "${NN[@]}" "$IMG" sh -c 'grep CapEff /proc/self/status; chown 1 /tmp 2>/dev/null; echo chown=$?'
    if [ "$c_all" = 0 ] && [ "$(echo $o_all)" = "CapEff: 0000000000000000 chown=1" ] && [ "$code" = 0 ] && [ "$(echo $out)" = "CapEff: 0000000000000001 chown=0" ]; then
        pass docker-caps
    else
        fail docker-caps "drop ALL: $c_all [$(echo $o_all)]; + CHOWN: $(why)"
    fi
    x "${D[@]}" run --rm --security-opt no-new-privileges "${NN[@]}" "$IMG" grep NoNewPrivs /proc/self/status
    local nnp=$out nc=$code
    x "${D[@]}" run --rm "${NN[@]}" "$IMG" grep NoNewPrivs /proc/self/status
    if [ "$nc" = 0 ] && [ "$(echo $nnp)" = "NoNewPrivs: 1" ] && [ "$(echo $out)" = "NoNewPrivs: 0" ]; then pass docker-no-new-privileges; else fail docker-no-new-privileges "with [$nnp] exit $nc; without $(why)"; fi
    # Docker's default seccomp profile refuses unshare(CLONE_NEWUSER) without
    # CAP_SYS_ADMIN; seccomp=unconfined allows it.
    x "${D[@]}" run --rm "${NN[@]}" "$IMG" sh -c 'grep "^Seccomp:" /proc/self/status; unshare -U true 2>&1; echo unshare=$?'
    local sd=$out
    x "${D[@]}" run --rm --security-opt seccomp=unconfined "${NN[@]}" "$IMG" sh -c 'grep "^Seccomp:" /proc/self/status; unshare -U true 2>&1; echo unshare=$?'
    if echo "$sd" | grep -Eq '^Seccomp:.2$' && echo "$sd" | grep -q 'Operation not permitted' && echo "$sd" | grep -qx unshare=1 &&
        [ "$(echo $out)" = "Seccomp: 0 unshare=0" ]; then
        pass docker-seccomp
    else
        fail docker-seccomp "default [$(echo $sd)]; unconfined $(why)"
    fi
    # --init: dockerd's init-path (husk-init) at /sbin/docker-init as PID 1.
    local want_md5
    want_md5=$(md5sum <"$INIT" | cut -d' ' -f1)
    x "${D[@]}" run --rm --init "${NN[@]}" "$IMG" sh -c 'tr "\0" " " </proc/1/cmdline; echo; echo pid=$$; md5sum /sbin/docker-init'
    if [ "$code" = 0 ] && echo "$out" | grep -q '^/sbin/docker-init -- sh' && echo "$out" | grep -Eq '^pid=([2-9]|[1-9][0-9]+)$' &&
        echo "$out" | grep -q "^$want_md5 "; then
        pass docker-init
    else
        fail docker-init "want PID 1 = /sbin/docker-init -- sh with md5 $want_md5; got $(why)"
    fi
    # `docker info` parses its init's `--version` line (tini's shape,
    # "NAME version X - git.COMMIT") for the init commit.
    local init_commit
    init_commit=$("$INIT" --version 2>/dev/null | sed -n 's/.* - git\.\([0-9a-f]*\)$/\1/p')
    x "${D[@]}" info --format '{{.InitCommit.ID}}'
    if [ "$code" = 0 ] && [ -n "$init_commit" ] && [ "$out" = "$init_commit" ]; then
        pass docker-info-init
    else
        fail docker-info-init "want the init commit '$init_commit'; got $(why)"
    fi
    x "${D[@]}" run --rm --user 1000:1000 "${NN[@]}" "$IMG" sh -c 'echo $(id -u):$(id -g); grep CapEff /proc/self/status; touch /x 2>/dev/null; echo touch=$?'
    if [ "$code" = 0 ] && [ "$(echo $out)" = "1000:1000 CapEff: 0000000000000000 touch=1" ]; then pass docker-user; else fail docker-user "$(why)"; fi
    x "${D[@]}" run --rm "${NN[@]}" "$IMG" sh -c 'ip -o link | cut -d: -f2; readlink /proc/self/ns/net'
    local netns_none=$out nnc=$code
    x "${D[@]}" run --rm --runtime "$DRT" --network host "$IMG" readlink /proc/self/ns/net
    local mine
    mine=$(readlink /proc/self/ns/net)
    if [ "$nnc" = 0 ] && [ "$(echo "$netns_none" | head -1 | tr -d ' ')" = lo ] && [ "$(echo "$netns_none" | wc -l)" = 2 ] &&
        [ "$(echo "$netns_none" | tail -1)" != "$mine" ] && [ "$code" = 0 ] && [ "$out" = "$mine" ]; then
        pass docker-network
    else
        fail docker-network "none: $nnc [$(echo $netns_none)]; host (want $mine): $(why)"
    fi

    # A user-defined bridge network (in this script's network namespace):
    # dockerd sends a prestart hook (libnetwork-setkey) that wires eth0.
    x "${D[@]}" network create "hk$TAG"
    local nc2=$code
    x "${D[@]}" run -d --name b1 --runtime "$DRT" --network "hk$TAG" "$IMG" sleep 100
    x "${D[@]}" inspect --format "{{(index .NetworkSettings.Networks \"hk$TAG\").IPAddress}}" b1
    local ip=$out
    x "${D[@]}" run --rm --runtime "$DRT" --network "hk$TAG" "$IMG" sh -c "ip -o -4 addr show eth0 | grep -q inet && ping -c 1 -W 5 $ip >/dev/null && echo reached"
    if [ "$nc2" = 0 ] && [ -n "$ip" ] && [ "$code" = 0 ] && [ "$out" = reached ]; then pass docker-network-bridge; else fail docker-network-bridge "create $nc2, ip [$ip], ping $(why)"; fi
    x "${D[@]}" rm -f b1
    x "${D[@]}" network rm "hk$TAG"

    # update --memory: only memory changes; the CPU quota set at run time,
    # the pids limit and the shares stay (read from the host's cgroup files).
    x "${D[@]}" run -d --name u1 --cpus 0.5 --pids-limit 50 --memory 32m "${NN[@]}" "$IMG" sleep 100
    x "${D[@]}" inspect --format '{{.State.Pid}}' u1
    local pid=$out
    lims() { echo "mem=$(cg_file "$pid" memory memory.limit_in_bytes) quota=$(cg_file "$pid" cpu cpu.cfs_quota_us)" \
        "period=$(cg_file "$pid" cpu cpu.cfs_period_us) shares=$(cg_file "$pid" cpu cpu.shares) pids=$(cg_file "$pid" pids pids.max)"; }
    local want_b="mem=33554432 quota=50000 period=100000 shares=1024 pids=50"
    local want_a="mem=67108864 quota=50000 period=100000 shares=1024 pids=50"
    if [ -n "$CG2" ]; then
        lims() { echo "mem=$(cg2_file "$pid" memory.max) cpu=$(cg2_file "$pid" cpu.max) weight=$(cg2_file "$pid" cpu.weight) pids=$(cg2_file "$pid" pids.max)"; }
        want_b="mem=33554432 cpu=50000 100000 weight=100 pids=50"
        want_a="mem=67108864 cpu=50000 100000 weight=100 pids=50"
    fi
    local before after
    [ "${pid:-0}" -gt 0 ] 2>/dev/null || pid=none
    before=$(lims)
    x "${D[@]}" update --memory 64m u1
    after=$(lims)
    if [ "$code" = 0 ] && [ "$before" = "$want_b" ] && [ "$after" = "$want_a" ]; then
        pass docker-update
    else
        fail docker-update "update $(why); before [$before] (want [$want_b]), after [$after] (want [$want_a])"
    fi
    x "${D[@]}" rm -f u1

    # --privileged: the bounding set as capabilities, the host's devices,
    # no seccomp filter, and mounts allowed.
    local bnd
    bnd=$(awk '/^CapBnd/ {print $2}' /proc/self/status)
    # dockerd asks for every capability it knows and the kernel has:
    # Debian 12's docker.io 20.10 knows 0-37 (its capability list ends at
    # CAP_AUDIT_READ). Where this machine's bounding set lacks one of them
    # (CAP_SYS_RESOURCE in some sandboxes), capset fails for every runtime.
    local full want_caps
    full=$(printf '%016x' $(( ((1 << ($(cat /proc/sys/kernel/cap_last_cap) + 1)) - 1) & ((1 << 38) - 1) )))
    want_caps=$(printf '%016x' $(( 0x$bnd & 0x$full )))
    if [ "$want_caps" != "$full" ]; then
        skip docker-privileged "this machine's capability bounding set is $bnd, without all of the $full dockerd asks for"
    else
        x "${D[@]}" run --rm --privileged "${NN[@]}" "$IMG" sh -c 'grep -E "^(CapEff|Seccomp):" /proc/self/status | tr -s "\t" " "; test -c /dev/kmsg && echo host-dev; mkdir -p /tmp/m && mount -t tmpfs t /tmp/m && echo mounted'
        if [ "$code" = 0 ] && [ "$(echo $out)" = "CapEff: $want_caps Seccomp: 0 host-dev mounted" ]; then pass docker-privileged; else fail docker-privileged "want CapEff $want_caps, Seccomp 0, host-dev, mounted; got $(why)"; fi
    fi
    # The options of `docker run` that become mounts, rlimits, sysctls,
    # devices and capabilities in the config.
    x "${D[@]}" run --rm "${NN[@]}" -v "$T/vol:/data:ro" --tmpfs /scratch:size=1m --ulimit nofile=123:456 --shm-size 8m \
        --hostname h1 --device /dev/null:/dev/mynull --sysctl net.ipv4.ip_forward=1 --cap-drop ALL --cap-add NET_RAW "$IMG" \
        sh -c 'cat /data/f; touch /data/g 2>/dev/null || echo ro; df -k /scratch /dev/shm | awk "NR>1 {print \$2}"; ulimit -n; ulimit -Hn; hostname; test -c /dev/mynull && echo >/dev/mynull && echo dev; cat /proc/sys/net/ipv4/ip_forward; grep CapEff /proc/self/status | tr -s "\t" " "'
    if [ "$code" = 0 ] && [ "$(echo $out)" = "in-vol ro 1024 8192 123 456 h1 dev 1 CapEff: 0000000000002000" ]; then
        pass docker-run-options
    else
        fail docker-run-options "want [in-vol ro 1024 8192 123 456 h1 dev 1 CapEff: 0000000000002000]; got $(why)"
    fi
    # More of `docker run`'s options: the host's PID namespace, a private
    # cgroup namespace, oom_score_adj, extra groups, a missing working dir
    # (created), a cpuset.
    x "${D[@]}" run --rm "${NN[@]}" --pid host --cgroupns private --oom-score-adj 500 --group-add 123 -w /no/such/dir --cpuset-cpus 0 "$IMG" \
        sh -c 'readlink /proc/self/ns/pid; grep -c "^[0-9]*:[^:]*:/$" /proc/self/cgroup; cat /proc/self/oom_score_adj; id -G; pwd; cat /sys/fs/cgroup/cpuset/cpuset.cpus 2>/dev/null || cat /sys/fs/cgroup/cpuset.cpus.effective'
    local hostpid ncg
    hostpid=$(readlink /proc/self/ns/pid)
    ncg=$(grep -c . /proc/self/cgroup)
    if [ "$code" = 0 ] && [ "$(echo $out)" = "$hostpid $ncg 500 0 123 /no/such/dir 0" ]; then
        pass docker-run-options-2
    else
        fail docker-run-options-2 "want [$hostpid $ncg 500 0 123 /no/such/dir 0]; got $(why)"
    fi
    # Namespaces shared by path: --network/--pid/--ipc container:NAME.
    x "${D[@]}" run -d --name n1 --ipc shareable "${NN[@]}" "$IMG" sleep 100
    x "${D[@]}" exec n1 sh -c 'for n in net pid ipc; do readlink /proc/1/ns/$n; done'
    local ns1=$out
    x "${D[@]}" run --rm --runtime "$DRT" --network container:n1 --pid container:n1 --ipc container:n1 "$IMG" \
        sh -c 'for n in net pid ipc; do readlink /proc/self/ns/$n; done; ps -o comm | grep -cx sleep'
    if [ "$code" = 0 ] && [ -n "$ns1" ] && [ "$out" = "$ns1"$'\n'1 ]; then pass docker-share-ns; else fail docker-share-ns "want [$(echo $ns1) 1]; got $(why)"; fi
    x "${D[@]}" rm -f n1
    # exec: the container's capabilities (Docker's default set), all of
    # them with --privileged; -d returns at once and the program runs on.
    x "${D[@]}" run -d --name e1 "${NN[@]}" "$IMG" sleep 100
    x "${D[@]}" exec e1 grep CapEff /proc/self/status
    local capx=$out
    x "${D[@]}" exec -d e1 sh -c 'sleep 0.3; echo bg >/tmp/bg'
    local dc=$code
    sleep 1
    x "${D[@]}" exec e1 cat /tmp/bg
    if [ "$(echo $capx)" = "CapEff: 00000000a80425fb" ] && [ "$dc" = 0 ] && [ "$out" = bg ]; then
        pass docker-exec-caps-detach
    else
        fail docker-exec-caps-detach "want Docker's default caps a80425fb, and -d then bg; got [$capx], -d $dc, $(why)"
    fi
    if [ "$want_caps" != "$full" ]; then
        skip docker-exec-privileged "this machine's capability bounding set is $bnd, without all of the $full dockerd asks for"
    else
        x "${D[@]}" exec --privileged e1 grep CapEff /proc/self/status
        if [ "$code" = 0 ] && [ "$(echo $out)" = "CapEff: $want_caps" ]; then pass docker-exec-privileged; else fail docker-exec-privileged "want CapEff $want_caps; got $(why)"; fi
    fi
    x "${D[@]}" rm -f e1
    # kill -s: the signal reaches the container's PID 1, wait gives its status.
    x "${D[@]}" run -d --name k1 "${NN[@]}" "$IMG" sh -c 'trap "echo got-usr1; exit 7" USR1; echo ready; while :; do sleep 0.1; done'
    for i in $(seq 50); do x "${D[@]}" logs k1; [ "$out" = ready ] && break; sleep 0.1; done
    x "${D[@]}" kill -s USR1 k1
    local kc=$code
    x "${D[@]}" wait k1
    local wc=$code wo=$out
    x "${D[@]}" logs k1
    if [ "$kc" = 0 ] && [ "$wc" = 0 ] && [ "$wo" = 7 ] && [ "$(echo $out)" = "ready got-usr1" ]; then pass docker-kill-signal; else fail docker-kill-signal "kill $kc, wait $wc [$wo] (want 7), logs $(why)"; fi
    x "${D[@]}" rm -f k1

    # Stop: containers first (dockerd would stop them itself, 10 s each),
    # then dockerd, which stops its containerd.
    x "${D[@]}" ps -aq
    [ -n "$out" ] && x "${D[@]}" rm -f $out
    local ctd
    ctd=$(cat "$T/dk/exec/containerd/containerd.pid" 2>/dev/null)
    kill -TERM $DKD_PID
    for i in $(seq 200); do kill -0 $DKD_PID 2>/dev/null || break; sleep 0.1; done
    if kill -0 $DKD_PID 2>/dev/null; then
        fail docker-stop-daemon "dockerd still running after 20 s"
    else
        DKD_PID=
        for i in $(seq 50); do [ -n "$ctd" ] && kill -0 "$ctd" 2>/dev/null || break; sleep 0.1; done
        if [ -n "$ctd" ] && kill -0 "$ctd" 2>/dev/null; then fail docker-stop-daemon "its containerd ($ctd) still runs"; else pass docker-stop-daemon; fi
    fi
}

case "${CLIENTS_ONLY:-}" in
    podman) podman_flows ;;
    containerd) containerd_flows ;;
    docker) docker_flows ;;
    *) podman_flows; containerd_flows; docker_flows ;;
esac
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
