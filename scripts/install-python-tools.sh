#!/usr/bin/env bash
# The Python tools the tests check the product's output with
# (tests/python/requirements.txt: pyHanko, a CAdES validator this project
# did not write), in a virtual environment of their own under target/ so
# that nothing is installed into the system's Python. Reinstalled only when
# the requirements change.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="${HPKI_PYTHON_VENV:-$root/target/pytools}"
req="$root/tests/python/requirements.txt"
stamp="$venv/.requirements"
if [ -x "$venv/bin/python" ] && cmp -s "$req" "$stamp"; then
    exit 0
fi
if ! python3 -m venv --help >/dev/null 2>&1; then
    "$root/scripts/install-deps.sh" python3-venv
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
cp "$req" "$stamp"
echo "python tools installed in $venv"
