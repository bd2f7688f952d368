#!/usr/bin/env bash
# The gateway against nginx (ssl_verify_client on) on this machine, in one go:
# logins/s end to end, authenticated whoami/s over keep-alive mTLS, and full
# mTLS handshakes/s, with the same certificates, load tool and connections;
# also nginx with auth_request + access log, and the gateway on PostgreSQL.
# Installs nginx and oha when missing. Method: shared/reference/bench-method.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh nginx-light
scripts/ensure-postgres.sh
command -v oha >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/oha" ] || cargo install oha --locked
cargo build --release -p hpki-gateway -p hpki-certs -p hpki-e2e --bin hpki-gateway --bin hpki-certs --bin tls-floor
HPKI_BIN_DIR="$PWD/target/release" cargo bench -p hpki-e2e --bench gateway_vs_nginx
