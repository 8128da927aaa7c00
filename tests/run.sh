#!/usr/bin/env bash
# Install everything the tests need and run them, leaving the environment you run this from as it is:
# the suite runs in its own venv, .venvs/test (made from `python3`, else `python`, with this checkout
# installed editable and the test extras; rebuilt only when its recipe changes: that interpreter's
# version, the checkout's path or pyproject.toml). Also installs Debian's chromium for the browser tests and the npm
# localtunnel server for the tunnel tests. Pass pytest options through, e.g.
# `bash tests/run.sh --soak` for the 10-minute soak.
#
# First the matrix (tests/matrix.py): the kernel, magic and CLI tests again from the built wheel, in
# venvs under .venvs/ for Colab's two runtimes, the newest releases and the oldest Python with the
# declared floors. It runs on a full run (no arguments) or with NBBOARD_MATRIX=1; NBBOARD_MATRIX=0 skips it.
#
# Last, HOME is compared with what it held before: a file or directory the run added there (other than
# pip's and npm's caches) fails the run, and is named.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore DEBIAN_FRONTEND=noninteractive

home_listing() {
  { find "$HOME" -xdev \( -path "$HOME/.cache/pip" -o -path "$HOME/.npm" \) -prune -o -print 2>/dev/null || true; } |
    LC_ALL=C sort
}
home_before=$(mktemp)
home_listing >"$home_before"
check_home() {
  local status=$? added
  # pip cache's parent; and rustup's settings file, which pip makes on a machine with rustup (its user agent
  # runs `rustc --version`, and rustup's proxy writes ~/.rustup/settings.toml when HOME has none)
  added=$(home_listing | LC_ALL=C comm -13 "$home_before" - |
    grep -vxF -e "$HOME/.cache" -e "$HOME/.rustup" -e "$HOME/.rustup/settings.toml" || true)
  rm -f "$home_before"
  if [ -n "$added" ]; then
    echo "tests/run.sh: the run added these under HOME ($HOME), which the tests must leave alone:" >&2
    echo "$added" | head -50 >&2
    [ "$status" -ne 0 ] || status=1
  fi
  exit "$status"
}
trap check_home EXIT

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi

base_python=$(command -v python3 || command -v python)
venv=.venvs/test
recipe=$({ "$base_python" -c 'import sys; print(sys.version)'; pwd; cat pyproject.toml; echo "run.sh venv 1"; } | sha256sum)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/recipe" 2>/dev/null)" != "$recipe" ]; then
  echo "tests/run.sh: making the test venv $venv from $base_python (once; reused while pyproject.toml is unchanged)"
  rm -rf "$venv"
  "$base_python" -m venv "$venv"
  # (this machine's pip config names local indexes that may be absent: their warnings are noise)
  "$venv/bin/python" -m pip install -q -e '.[test]' 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  echo "$recipe" >"$venv/recipe"
fi
export VIRTUAL_ENV="$PWD/$venv" PATH="$PWD/$venv/bin:$PATH"
unset PYTHONHOME PYTHONPATH

bash tests/peers/install.sh
want_matrix=0
[ $# -eq 0 ] && want_matrix=1
matrix_status=0
if [ "${NBBOARD_MATRIX:-$want_matrix}" = 1 ]; then
  python tests/matrix.py || matrix_status=$?
fi
python -m pytest -q --durations=20 "$@"
exit "$matrix_status" # the main suite's failure has already stopped the script (set -e)
