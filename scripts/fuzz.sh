#!/usr/bin/env bash
# Build every cargo-fuzz target and run each for N seconds (default 10).
# Longer runs: `bash scripts/fuzz.sh 600`, or one target:
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir rust/fuzz TARGET -- -max_total_time=600
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked -q
fi
# cargo-fuzz needs nightly flags (-Z sanitizer); the one toolchain here is
# stable, and RUSTC_BOOTSTRAP lets it accept them.
export RUSTC_BOOTSTRAP=1
targets=$(cargo fuzz list --fuzz-dir rust/fuzz)
cargo fuzz build --fuzz-dir rust/fuzz -O
for t in $targets; do
    echo "fuzz: $t (${seconds}s)"
    mkdir -p "rust/fuzz/corpus/$t" "rust/fuzz/seeds/$t"
    cargo fuzz run --fuzz-dir rust/fuzz -O "$t" "rust/fuzz/corpus/$t" "rust/fuzz/seeds/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=0 >/tmp/fuzz-"$t".log 2>&1 \
        || { tail -50 /tmp/fuzz-"$t".log; exit 1; }
done
