#!/usr/bin/env bash
# Creates the reference environment for the drift lens: `lifetimes` 0.11.3 (unmaintained,
# last release 2020) with the versions it still works with. It is never a dependency of
# sawubona; tests/test_bgnbd.py and bench/bench_drift.py run it in a subprocess when present.
#
#   bench/reference_env.sh            # creates bench/.ref-venv (git-ignored by its own .gitignore)
#   REF_VENV=/some/where bench/reference_env.sh
#
# Pins: lifetimes 0.11.3 imports pkg_resources (setuptools < 70), uses pandas APIs removed
# in pandas 2.2/3 and autograd with NumPy 1.x; scipy < 1.13 keeps the optimiser it was
# released against; pyarrow reads the benchmark's Parquet log. All install as wheels for
# CPython 3.11.
set -eu
HERE="$(cd "$(dirname "$0")" && pwd)"
VENV="${REF_VENV:-$HERE/.ref-venv}"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import lifetimes, pyarrow" 2>/dev/null; then
  echo "reference env ready: $VENV"
  exit 0
fi
"$PY" -m venv "$VENV"
printf '*\n' > "$VENV/.gitignore"
"$VENV/bin/python" -m pip install -q --upgrade "pip<25"
"$VENV/bin/python" -m pip install -q \
  "lifetimes==0.11.3" "pandas>=1.5,<2.2" "numpy>=1.24,<2" "scipy>=1.10,<1.13" \
  "setuptools<70" "autograd==1.6.2" "dill>=0.3" "pyarrow>=14,<18"
"$VENV/bin/python" - <<'PY'
import warnings
warnings.simplefilter("ignore")
import lifetimes, numpy, pandas, scipy
from lifetimes import BetaGeoFitter
print("lifetimes", lifetimes.__version__, "numpy", numpy.__version__, "pandas",
      pandas.__version__, "scipy", scipy.__version__)
PY
echo "reference env ready: $VENV"
