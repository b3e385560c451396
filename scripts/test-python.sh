#!/usr/bin/env bash
# The trainer's pytest suite on Debian's PyTorch (/usr/bin/python3), never the pyenv interpreter.
set -uo pipefail
cd "$(dirname "$0")/../trainer"
PY=${CVOPT_PYTHON:-/usr/bin/python3}
"$PY" -m pytest -q -p no:cacheprovider "$@"
rc=$?
# pytest exits 5 when it collected nothing; that is a failure of the suite, not a pass.
exit $rc
