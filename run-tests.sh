#!/bin/bash
# Command 2 of the README: install what the tests need, build the static
# binaries, run every test. Run as root on Debian 12.
set -uo pipefail
cd "$(dirname "$0")"
./scripts/setup-host.sh || exit 1
. ./scripts/env.sh
echo "== static musl builds (both arches), size budgets, aarch64 smoke test"
./cross/build.sh || exit 1
export HUSK_BIN_DIR=$PWD/dist/x86_64
log=$(mktemp /tmp/husk-tests.XXXXXX)
echo "== unit and end-to-end tests (binaries from $HUSK_BIN_DIR)"
cargo test --workspace --no-fail-fast -- --test-threads=2 --nocapture 2>&1 | tee "$log" | grep -E '^(test |running |test result:|SKIP|failures:|---- )|panicked'
rc=${PIPESTATUS[0]}
echo "== aarch64 unit tests under qemu-aarch64-static (seccomp BPF, rootfs checks)"
cargo test --target aarch64-unknown-linux-musl -p husk --bins seccomp 2>&1 | tail -3
rc2=${PIPESTATUS[0]}
skips=$(grep -c '^SKIP' "$log" || true)
echo "== skipped checks: $skips"
grep '^SKIP' "$log" | sort | uniq -c || true
rm -f "$log"
[ "$rc" = 0 ] && [ "$rc2" = 0 ]
