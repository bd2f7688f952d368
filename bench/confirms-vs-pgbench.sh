#!/usr/bin/env bash
# Confirms per second (signature verification + encryption + durable write +
# audit) on SQLite and on PostgreSQL, next to pgbench's built-in TPC-B-like
# script on the same PostgreSQL server, in one run (release build).
set -euo pipefail
cd "$(dirname "$0")/.."
# pgbench comes with the PostgreSQL server package that ensure-postgres installs.
scripts/ensure-postgres.sh
cargo bench -p hpki-e2e --bench confirms_vs_pgbench
