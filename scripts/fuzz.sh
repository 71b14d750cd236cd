#!/bin/bash
# Runs each cargo-fuzz target of husk for a bounded time (not part of CI).
#
#   scripts/fuzz.sh [SECONDS]     default 60 seconds per target
#
# Targets (runtime/fuzz/fuzz_targets/):
#   config_json      config.json text -> linux.seccomp -> BPF (both arches)
#   seccomp_compile  structured profiles -> BPF, checked against the
#                    reference semantics with a BPF interpreter
# Findings (inputs that panic) land in runtime/fuzz/artifacts/<target>/;
# replay one with: cd runtime/fuzz && cargo +nightly fuzz run <target> <file>
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
secs=${1:-60}
case "$secs" in
    '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a number, got '$secs'" >&2; exit 2 ;;
esac
# libFuzzer instrumentation (-Z sanitizer) needs a nightly compiler.
if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz.sh: cannot run: cargo fuzz needs a nightly toolchain (rustup toolchain install nightly)" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== cargo install cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
cd runtime/fuzz
echo "== build the fuzz targets (nightly, libFuzzer)"
if ! cargo +nightly fuzz build; then
    echo "fuzz.sh: building the fuzz targets failed" >&2
    exit 1
fi
status=0
for t in config_json seccomp_compile; do
    mkdir -p "corpus/$t"
    cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true
    echo "== fuzz $t for ${secs}s"
    if ! cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048; then
        echo "fuzz.sh: $t found a failing input: see runtime/fuzz/artifacts/$t/" >&2
        status=1
    fi
done
exit $status
