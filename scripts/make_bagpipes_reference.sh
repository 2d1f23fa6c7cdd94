#!/usr/bin/env bash
# Installs bagpipes 1.3.6 with pip into a throw-away virtual environment and regenerates the
# committed reference tables (bagpipes itself is never committed).
# Usage: scripts/make_bagpipes_reference.sh [FILTER_LIST]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
flist=${1:-$here/../../shared/filters/filters_jades_no_wfc.dat}
venv=${BAGPIPES_VENV:-/tmp/sbipix-bagpipes-venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q "bagpipes==1.3.6"
cd "$(mktemp -d)"   # bagpipes writes a pipes/ folder in the working directory
"$venv/bin/python" "$here/bagpipes_reference.py" "$flist" "$here/../crates/sbipix/tests/data" "${N:-250}"
