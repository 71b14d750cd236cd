#!/bin/bash
# Import speed of `husk-rootfs import` against GNU tar extracting the same
# layers (target: within 1.5x). Builds a ~SIZE_MB multi-layer OCI image from
# files under /usr (gzip layers, plus one whiteout layer), then times both.
# Usage: bench/rootfs-import.sh [SIZE_MB]   (run as root; needs GNU tar, gzip, sha256sum)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${1:-100}
BIN=${HUSK_BIN_DIR:-$PWD/target/x86_64-unknown-linux-musl/release}/husk-rootfs
if [ ! -x "$BIN" ]; then
    cargo build --release --target x86_64-unknown-linux-musl -p husk-rootfs >&2
fi
W=$(mktemp -d /var/tmp/husk-bench-import.XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$W"' EXIT

echo "== building a ~${SIZE_MB} MB image in $W"
# Regular files from /usr, sorted, split into three layers by size.
{ find /usr/lib /usr/share /usr/include -xdev -type f -size -8M -printf '%s %p\n' 2>/dev/null || true; } |
    sed 's| /| |' | LC_ALL=C sort -k2 >"$W/all"
awk -v max=$((SIZE_MB * 1024 * 1024)) -v dir="$W" '
        { if (tot >= max) exit; tot += $1; n = int(3 * tot / (max + 1)) + 1; print substr($0, index($0, " ") + 1) > (dir "/list" n) }' "$W/all"
mkdir -p "$W/layout/blobs/sha256"
layers=()
diffs=()
for n in 1 2 3; do
    tar -C / --numeric-owner -cf "$W/layer$n.tar" -T "$W/list$n"
    diffs+=("sha256:$(sha256sum <"$W/layer$n.tar" | cut -d' ' -f1)")
    gzip -n -6 "$W/layer$n.tar"
    layers+=("$W/layer$n.tar.gz")
done
# Layer 4 deletes a few of layer 1's files (whiteouts).
mkdir -p "$W/wh"
head -n 50 "$W/list1" | while read -r f; do
    mkdir -p "$W/wh/$(dirname "$f")"
    : >"$W/wh/$(dirname "$f")/.wh.$(basename "$f")"
done
tar -C "$W/wh" --numeric-owner -cf "$W/layer4.tar" .
diffs+=("sha256:$(sha256sum <"$W/layer4.tar" | cut -d' ' -f1)")
gzip -n "$W/layer4.tar"
layers+=("$W/layer4.tar.gz")

blob() { # file -> prints digest, moves it into the layout
    local d
    d=$(sha256sum <"$1" | cut -d' ' -f1)
    cp "$1" "$W/layout/blobs/sha256/$d"
    echo "$d"
}
ldesc=""
for l in "${layers[@]}"; do
    d=$(blob "$l")
    ldesc="$ldesc${ldesc:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$d\",\"size\":$(stat -c %s "$l")}"
done
dids=$(printf '"%s",' "${diffs[@]}")
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%s]}}' "${dids%,}" >"$W/config.json"
cd_=$(blob "$W/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
    "$cd_" "$(stat -c %s "$W/config.json")" "$ldesc" >"$W/manifest.json"
md=$(blob "$W/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s}]}' \
    "$md" "$(stat -c %s "$W/manifest.json")" >"$W/layout/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$W/layout/oci-layout"
unpacked=$(cat "$W"/list[123] | (cd / && xargs -d '\n' stat -c %s) | awk '{s+=$1} END {printf "%d", s/1048576}')
echo "   ${unpacked} MB in $(cat "$W"/list[123] | wc -l) files, $(du -cm "${layers[@]}" | tail -1 | cut -f1) MB compressed, 4 layers"

now() { date +%s.%N; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
less() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
sync
best_tar=""
best_husk=""
run_tar() {
    mkdir "$W/out-tar-$round"
    local t0
    t0=$(now)
    for l in "${layers[@]}"; do tar -C "$W/out-tar-$round" --numeric-owner -xzf "$l"; done
    minus "$(now)" "$t0"
}
run_husk() {
    local t0
    t0=$(now)
    "$BIN" import "$W/layout" "$W/out-husk-$round" >/dev/null
    minus "$(now)" "$t0"
}
for round in 1 2 3 4; do
    # No tree is removed between runs: ext4 makes inode allocation slow for
    # minutes after a mass delete, which would punish whoever runs next.
    sync
    # Alternate who goes first: the second run pays for the first's writeback.
    if [ $((round % 2)) = 1 ]; then
        tt=$(run_tar); sync; th=$(run_husk)
    else
        th=$(run_husk); sync; tt=$(run_tar)
    fi
    sync
    echo "   round $round: GNU tar ${tt}s, husk-rootfs import ${th}s"
    if [ -z "$best_tar" ] || less "$tt" "$best_tar"; then best_tar=$tt; fi
    if [ -z "$best_husk" ] || less "$th" "$best_husk"; then best_husk=$th; fi
done
# (GNU tar does not apply whiteouts: its tree keeps the .wh. files; the work
# is the same.)
ratio=$(awk -v a="$best_husk" -v b="$best_tar" 'BEGIN { printf "%.2f", a / b }')
echo "== best of 4: GNU tar ${best_tar}s, husk-rootfs import ${best_husk}s (digests checked): ratio ${ratio}x (target <= 1.5x)"
