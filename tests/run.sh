#!/usr/bin/env bash
# Install everything the tests need (pip test extras, Debian's chromium for the browser tests,
# the npm localtunnel server for the tunnel tests) and run them. Pass pytest options through,
# e.g. `bash tests/run.sh --soak` for the 10-minute soak.
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
python -m pytest -q "$@"
