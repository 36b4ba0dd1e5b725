#!/usr/bin/env bash
# The one command that installs what the tests need, builds the extension and
# runs every check. .ci/run calls it; so can you: `bash scripts/check.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
step() { printf '\n==> %s\n' "$*"; }

# Debian tools that the interop tests and benchmarks drive.
APT_PACKAGES=(postfix swaks curl dovecot-pop3d dovecot-imapd fetchmail isync mutt offlineimap3)
need_apt=0
for tool in /usr/sbin/smtp-sink /usr/sbin/smtp-source /usr/bin/swaks /usr/bin/curl \
    /usr/sbin/dovecot /usr/lib/dovecot/pop3 /usr/lib/dovecot/imap /usr/bin/fetchmail \
    /usr/bin/mbsync /usr/bin/mutt /usr/bin/offlineimap; do
    [ -x "$tool" ] || need_apt=1
done
if [ "$need_apt" = 1 ]; then
    step "apt-get install ${APT_PACKAGES[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${APT_PACKAGES[@]}"
fi

step "pip install -e .[test] (builds the Rust extension in release mode)"
"$PY" -m pip install -q --disable-pip-version-check -e '.[test]'

step "cargo fmt --check"
cargo fmt --check
step "cargo clippy (with and without the python feature)"
cargo clippy -q --all-targets -- -D warnings
cargo clippy -q --all-targets --no-default-features -- -D warnings
step "cargo test (pure Rust)"
cargo test -q --no-default-features

step "ruff"
"$PY" -m ruff check python tests benches
"$PY" -m ruff format --check python tests benches
step "mypy --strict"
"$PY" -m mypy
step "mypy.stubtest mailcore._core"
"$PY" -m mypy.stubtest mailcore._core

if [ "${SKIP_FUZZ:-0}" != 1 ]; then
    step "fuzz smoke run (each target for ${FUZZ_SECONDS:-10}s)"
    bash scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
fi

step "pytest (benchmarks run once, untimed)"
"$PY" -m pytest -q
