#!/usr/bin/env bash
# Forward-model speed, sbipix beside bagpipes 1.3.6 in the same run on the same machine.
# bagpipes is installed with pip into a throw-away virtual environment (never committed).
# Usage: scripts/bench_forward_model.sh [FILTER_LIST]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
flist=${1:-$here/../../shared/filters/filters_jades_no_wfc.dat}
venv=${BAGPIPES_VENV:-/tmp/sbipix-bagpipes-venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q "bagpipes==1.3.6"
echo "== machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
echo "== bagpipes 1.3.6: one 19-band model (model_galaxy.update), median of 250"
out=$(mktemp -d)
(cd "$out" && "$venv/bin/python" "$here/bagpipes_reference.py" "$flist" "$out" 250 | sed 's/^.*reference_//')
echo "== sbipix (criterion): SEDs per second"
cd "$here/.." && cargo bench -p sbipix --bench photometry 2>&1 | grep -E "photometry_19band|thrpt" | grep -v "%"
