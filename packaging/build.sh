#!/usr/bin/env bash
# Builds the .deb and the .rpm into target/debian/ and target/generate-rpm/.
# Needs cargo-deb and cargo-generate-rpm (`cargo install --locked cargo-deb cargo-generate-rpm`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
mkdir -p target/man
cargo run --quiet --locked --example manpage | gzip -9n > target/man/postfix-dogstatsd.1.gz
cargo deb --no-build --locked
cargo generate-rpm
ls -1 target/debian/*.deb target/generate-rpm/*.rpm
