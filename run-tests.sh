#!/bin/bash
# Command 2 of the README: install what the tests need, build the static
# binaries, run every test. Run as root on Debian 12.
set -uo pipefail
cd "$(dirname "$0")"
./scripts/setup-host.sh || exit 1
. ./scripts/env.sh
fail=0
echo "== cargo fmt --check, clippy -D warnings"
cargo fmt --all -- --check || { echo "cargo fmt: the tree is not formatted (run cargo fmt --all)"; fail=1; }
cargo clippy -q --workspace --all-targets -- -D warnings || fail=1
echo "== static musl builds (both arches), size budgets, aarch64 smoke test"
./cross/build.sh || exit 1
export HUSK_BIN_DIR=$PWD/dist/x86_64
log=$(mktemp /tmp/husk-tests.XXXXXX)
echo "== unit and end-to-end tests (binaries from $HUSK_BIN_DIR)"
cargo test --workspace --no-fail-fast -- --test-threads=2 --nocapture 2>&1 | tee "$log" | grep -E '^(test |running |test result:|SKIP|failures:|---- )|panicked|fault points|delay sweep'
[ "${PIPESTATUS[0]}" = 0 ] || fail=1
echo "== aarch64 unit tests under qemu-aarch64-static (seccomp BPF)"
cargo test --target aarch64-unknown-linux-musl -p husk-seccomp 2>&1 | tail -3
[ "${PIPESTATUS[0]}" = 0 ] || fail=1
# runc's own integration suite (runc 1.1.5, bats) against the shipped
# husk, with our list of expected failures (docs/conformance.md).
bats_dir=${RUNC_BATS_DIR:-$PWD/../shared/runc-bats}
if [ -x "$bats_dir/run.sh" ]; then
    echo "== runc's integration suite (runc-bats) with tests/runc-bats/expected-failures.txt"
    "$bats_dir/setup.sh" >/dev/null || { echo "runc-bats setup failed"; fail=1; }
    out=$(mktemp -d /tmp/husk-runc-bats.XXXXXX)
    start=$(date +%s)
    "$bats_dir/run.sh" --expect-fail tests/runc-bats/expected-failures.txt "$HUSK_BIN_DIR/husk" "$out" >"$out/run.log" 2>&1
    rc=$?
    grep -E '^(TOTAL|UNEXPECTED|LISTED)' "$out/run.log" "$out/expect-fail.txt" 2>/dev/null | sed 's/^[^:]*://'
    tail -1 "$out/run.log"
    echo "runc-bats wall time: $(($(date +%s) - start)) s (results in $out)"
    [ "$rc" = 0 ] || fail=1
else
    echo "SKIP: runc's integration suite: $bats_dir/run.sh not found (set RUNC_BATS_DIR)" | tee -a "$log"
fi
skips=$(grep -c '^SKIP' "$log" || true)
echo "== skipped checks: $skips"
grep '^SKIP' "$log" | sort | uniq -c || true
rm -f "$log"
exit $fail
