#!/usr/bin/env python3
"""Interleaved OCI runtime benchmark: husk vs runc vs crun on one bundle.

Called by bench/run.sh inside one private mount namespace (so every runtime
sees the same cgroup layout). Each measured operation is timed with
time.perf_counter_ns around one subprocess; the runtimes take turns inside
every iteration, and the order rotates from one iteration to the next so no
runtime always runs right after another one's cleanup.

usage: rtbench.py WORK HUSK ITERS SEQ_ROUNDS RSS_ITERS RUNTIME...
  WORK holds bundle-net/, bundle-nonet/ (config.json for husk and runc) and
  bundle-net-crun/, bundle-nonet-crun/ (the same config with ociVersion
  1.0.2, which crun 1.8 needs). Prints a markdown report on stdout and
  writes WORK/rtbench.json.
"""
import json
import os
import statistics
import subprocess
import sys
import time

WORK, HUSK = sys.argv[1], sys.argv[2]
ITERS, SEQ_ROUNDS, RSS_ITERS = (int(a) for a in sys.argv[3:6])
RUNTIMES = sys.argv[6:]
EXE = {"husk": HUSK, "runc": "runc", "crun": "crun"}
DEVNULL = subprocess.DEVNULL
counter = 0
failures = {}


class Failed(Exception):
    pass


def bundle(rt, net):
    name = "bundle-" + ("net" if net else "nonet")
    if rt == "crun":
        name += "-crun"
    return os.path.join(WORK, name)


def root(rt):
    return os.path.join(WORK, "state-" + rt)


def cmd(rt, *args):
    return [EXE[rt], "--root", root(rt), *args]


def new_id(rt):
    global counter
    counter += 1
    return "hb%d-%s-%d" % (os.getpid(), rt, counter)


def timed(argv, what):
    """Runs argv, returns its wall time in ms. stderr goes to a file, not a
    pipe: after `create` the container holds its stdio until `start`, and a
    pipe would make us wait for it."""
    with open(os.path.join(WORK, "stderr.txt"), "w+b") as err:
        t0 = time.perf_counter_ns()
        rc = subprocess.call(argv, stdin=DEVNULL, stdout=DEVNULL, stderr=err)
        t1 = time.perf_counter_ns()
        if rc != 0:
            err.seek(0)
            raise Failed("%s: exit %d: %s" % (what, rc, err.read().decode(errors="replace").strip()[-300:]))
    return (t1 - t0) / 1e6


call = timed


def force_delete(rt, cid):
    subprocess.run(cmd(rt, "delete", "--force", cid), stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL)


def op_run(rt, net):
    cid = new_id(rt)
    try:
        return {"run": timed(cmd(rt, "run", "--bundle", bundle(rt, net), cid), "%s run" % rt)}
    finally:
        force_delete(rt, cid)


def wait_stopped(rt, cid):
    for _ in range(2000):
        p = subprocess.run(cmd(rt, "state", cid), stdin=DEVNULL, capture_output=True)
        if p.returncode == 0 and json.loads(p.stdout).get("status") == "stopped":
            return
        time.sleep(0.005)
    raise Failed("%s: container %s never stopped" % (rt, cid))


def op_lifecycle(rt, net):
    cid = new_id(rt)
    try:
        r = {"create": timed(cmd(rt, "create", "--bundle", bundle(rt, net), cid), "%s create" % rt)}
        r["start"] = timed(cmd(rt, "start", cid), "%s start" % rt)
        wait_stopped(rt, cid)  # not timed: /bin/true exiting is not the runtime's cost
        r["delete"] = timed(cmd(rt, "delete", cid), "%s delete" % rt)
        cid = None
        return r
    finally:
        if cid:
            force_delete(rt, cid)


def op_seq100(rt, net):
    t0 = time.perf_counter_ns()
    for _ in range(100):
        cid = new_id(rt)
        try:
            call(cmd(rt, "run", "--bundle", bundle(rt, net), cid), "%s run (100 runs)" % rt)
        except Failed:
            force_delete(rt, cid)
            raise
    return {"100 runs": (time.perf_counter_ns() - t0) / 1e6}


def peak_rss(argv, what):
    out = os.path.join(WORK, "rss.txt")
    call(["/usr/bin/time", "-f", "%M", "-o", out, *argv], what)
    with open(out) as f:
        return float(f.read().split()[-1])


def op_rss(rt, net):
    """Peak RSS (KiB), GNU time's %M: the largest of the runtime process and
    the descendants it reaped. For `run` that includes the container's
    /bin/true (busybox); `create`, `start` and `delete` reap no container
    process, so they show the runtime's own peak."""
    cid = new_id(rt)
    try:
        r = {"peak RSS of `run` (incl. the container's /bin/true)": peak_rss(cmd(rt, "run", "--bundle", bundle(rt, net), cid), "%s run under time" % rt)}
        cid = new_id(rt)
        r["peak RSS of `create`"] = peak_rss(cmd(rt, "create", "--bundle", bundle(rt, net), cid), "%s create under time" % rt)
        r["peak RSS of `start`"] = peak_rss(cmd(rt, "start", cid), "%s start under time" % rt)
        wait_stopped(rt, cid)
        r["peak RSS of `delete`"] = peak_rss(cmd(rt, "delete", cid), "%s delete under time" % rt)
        cid = None
        return r
    finally:
        if cid:
            force_delete(rt, cid)


def interleave(op, iters, net=True):
    res = {rt: {} for rt in RUNTIMES}
    for i in range(iters):
        k = i % len(RUNTIMES)
        for rt in RUNTIMES[k:] + RUNTIMES[:k]:
            if rt in failures:
                continue
            try:
                for name, v in op(rt, net).items():
                    res[rt].setdefault(name, []).append(v)
            except Failed as e:
                failures[rt] = str(e)
                print("FAIL: " + str(e), file=sys.stderr)
    return res


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def stats(v):
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}


def main():
    os.makedirs(os.path.join(WORK, "state-husk"), exist_ok=True)
    for rt in RUNTIMES:
        os.makedirs(root(rt), exist_ok=True)
    load0 = loadavg()
    # Warm-up: page cache for the binaries and the rootfs.
    interleave(op_run, 2)
    sections = []
    plan = [
        ("run /bin/true, network namespace", op_run, ITERS, True, "ms"),
        ("run /bin/true, no network namespace", op_run, ITERS, False, "ms"),
        ("create / start / delete, network namespace", op_lifecycle, ITERS, True, "ms"),
        ("100 sequential runs, network namespace", op_seq100, SEQ_ROUNDS, True, "ms"),
        ("peak RSS", op_rss, RSS_ITERS, True, "KiB"),
    ]
    for title, op, n, net, unit in plan:
        print("  %s (%d iterations)" % (title, n), file=sys.stderr, flush=True)
        sections.append((title, n, unit, interleave(op, n, net)))
    load1 = loadavg()

    out = {"load_before": load0, "load_after": load1, "failures": failures, "sections": []}
    lines = []
    peers = [rt for rt in RUNTIMES if rt != "husk"]
    hdr = "| operation | " + " | ".join(
        ["%s median (min–max)" % rt for rt in RUNTIMES]) + " | " + " | ".join(["husk ÷ %s" % p for p in peers]) + " |"
    lines.append(hdr)
    lines.append("|" + "---|" * (1 + len(RUNTIMES) + len(peers)))
    for title, n, unit, res in sections:
        names = []
        for rt in RUNTIMES:
            for name in res[rt]:
                if name not in names:
                    names.append(name)
        for name in names:
            label = name if name.startswith("peak RSS") else title
            if name in ("create", "start", "delete"):
                label = "`%s` alone, network namespace" % name
            label += " [%s, n=%d]" % (unit, n)
            cells, st = [], {}
            for rt in RUNTIMES:
                v = res[rt].get(name)
                if not v:
                    cells.append("failed" if rt in failures else "–")
                    continue
                st[rt] = stats(v)
                fmt = "%.0f" if unit == "KiB" or st[rt]["median"] >= 100 else "%.1f"
                cells.append((fmt + " (" + fmt + "–" + fmt + ")") % (st[rt]["median"], st[rt]["min"], st[rt]["max"]))
            ratios = []
            for p in peers:
                if "husk" in st and p in st:
                    ratios.append("%.2f" % (st["husk"]["median"] / st[p]["median"]))
                else:
                    ratios.append("–")
            lines.append("| %s | %s | %s |" % (label, " | ".join(cells), " | ".join(ratios)))
            out["sections"].append({"op": label, "unit": unit, "stats": st})
    with open(os.path.join(WORK, "rtbench.json"), "w") as f:
        json.dump(out, f, indent=1)
    print("\n".join(lines))
    print()
    print("Load average (1/5/15 min) before: %s, after: %s." % (load0, load1))
    for rt, e in failures.items():
        print("\n**%s failed**: %s" % (rt, e))


if __name__ == "__main__":
    main()
