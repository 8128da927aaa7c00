"""A board also answers on IPv6 loopback (``[::1]``), at its own port: nobody else can take that address.

TensorBoard binds 127.0.0.1 only. Browsers send ``http://localhost:PORT/`` to ``[::1]:PORT`` first and fall
back to 127.0.0.1 only when nothing answers there, and the board's widget keeps a page's ``localhost``
(js/board.js: the frame must be same-site to keep its storage), as does the shared code origin. So any
local program, another user's included, that binds ``[::1]:PORT`` while the board runs would be what the
notebook frames as the board. Serving the same app there holds the address. If another program holds it
already, TensorBoard is given another port (when the port was the system's choice) or the log says why
``localhost`` is unsafe for this board.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
from collections.abc import Callable
from typing import Any

#: Tries for a port the system chose (``--port 0``) whose ``[::1]`` twin another program holds.
TRIES = 8


def serve_twin(server: Any) -> bool | None:
    """Serve ``server``'s app on ``[::1]`` at its port, in a daemon thread.

    True: served. None: nothing to hold (not on 127.0.0.1, or no IPv6 loopback here, so a browser cannot
    reach ``[::1]`` either). False: another program holds ``[::1]`` at that port.
    """
    host, port = server.server_address[:2]
    if host != "127.0.0.1" or not socket.has_ipv6:
        return None
    from werkzeug import serving

    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        # Bound here, not by werkzeug, which exits the process when the address is taken.
        sock.bind(("::1", int(port)))
        sock.listen(128)
    except OSError as e:
        sock.close()
        return False if e.errno == errno.EADDRINUSE else None  # else no ::1 here: browsers use 127.0.0.1 at once
    try:
        handler = getattr(server, "RequestHandlerClass", None)  # TensorBoard's: its logging, its HTTP version
        twin = serving.make_server(
            "::1", int(port), server.app, threaded=True, request_handler=handler, fd=sock.fileno()
        )
    except Exception:  # noqa: BLE001 - another werkzeug: the board runs as TensorBoard alone would
        return None
    finally:
        sock.close()  # werkzeug serves a duplicate of it
    threading.Thread(target=twin.serve_forever, name="nbboard-loopback6", daemon=True).start()
    server.nbboard_twin = twin  # lives as long as the board's process
    return True


def with_twin(create: Callable[[], Any], system_port: bool) -> Any:
    """``create()``'s server, with its ``[::1]`` twin; a new port while another program holds that twin."""
    tries = TRIES if system_port else 1
    server = create()
    for attempt in range(tries):
        if serve_twin(server) is not False:
            return server
        if attempt + 1 < tries:
            with contextlib.suppress(Exception):
                server.server_close()
            server = create()
    port = server.server_address[1]
    print(  # the board's log, for whoever wonders why localhost shows something else
        f"nbboard: another program listens on [::1]:{port}; a browser opening http://localhost:{port}/ reaches it, "
        f"not this board: open http://127.0.0.1:{port}/",
        flush=True,
    )
    return server
