#!/usr/bin/env bash
# Install everything the tests need (pip test extras, Debian's chromium for the browser tests,
# the npm localtunnel server for the tunnel tests) and run them. Pass pytest options through,
# e.g. `bash tests/run.sh --soak` for the 10-minute soak.
#
# First the matrix (tests/matrix.py): the kernel, magic and CLI tests again from the built wheel, in
# venvs under .venvs/ for Colab's stack, the newest releases and the oldest Python with the declared
# floors. It runs on a full run (no arguments) or with NBBOARD_MATRIX=1; NBBOARD_MATRIX=0 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore DEBIAN_FRONTEND=noninteractive
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
python -m pip install -q -e '.[test]'
bash tests/peers/install.sh
want_matrix=0
[ $# -eq 0 ] && want_matrix=1
matrix_status=0
if [ "${NBBOARD_MATRIX:-$want_matrix}" = 1 ]; then
  python tests/matrix.py || matrix_status=$?
fi
python -m pytest -q "$@"
exit "$matrix_status"  # the main suite's failure has already stopped the script (set -e)
