#!/bin/bash
# Command 2 of the README: install what the tests need, build, run every test.
# Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")"
./scripts/setup-host.sh
. ./scripts/env.sh
echo "== build (static musl, release)"
cargo build --release --target x86_64-unknown-linux-musl --workspace --bins
export HUSK_BIN_DIR=$PWD/target/x86_64-unknown-linux-musl/release
echo "== unit and end-to-end tests"
cargo test --workspace --no-fail-fast -- --test-threads=2
