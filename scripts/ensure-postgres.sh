#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 for the store
# tests: starts the machine's cluster when it is down, installs one when
# there is none. Tests create and drop their own databases.
set -euo pipefail
ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
command -v pg_isready >/dev/null 2>&1 && ready && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  echo "Installing PostgreSQL"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends postgresql
fi
version=$(ls /etc/postgresql | sort -V | tail -n 1)
echo "Starting PostgreSQL $version"
$sudo pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
for _ in $(seq 1 50); do ready && break; sleep 0.2; done
ready || { echo "PostgreSQL did not start on 127.0.0.1:5432" >&2; exit 1; }
# Tests connect as postgres over TCP without a password (trust), as the
# machine is set up; say so clearly if it is not.
psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1 || {
  echo "cannot connect as postgres@127.0.0.1 without a password; set HPKI_TEST_PG_URL" >&2; exit 1; }
