"""The options for starting a board, declared once for argparse.

``nbboard start``/``nbboard demo`` (:mod:`nbboard.cli`) and ``%board``
(:mod:`nbboard.magic_args`) both build their parsers from
:func:`add_start_options`, so a name, an alias, a metavar or a help text is
written here only. The magic adds its own few options (``--height``,
``--no-display``, ``--tunnel``, ``--pid``) in :mod:`nbboard.magic_args`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from .config import DEFAULTS

#: Turns an :mod:`nbboard.inputs` parser into an argparse ``type`` (the CLI's), or None: keep the text.
Convert = Callable[[Callable[[Any], Any]], Callable[[str], Any]] | None


def add_start_options(parser: argparse.ArgumentParser, convert: Convert = None, *, logdir: bool = True) -> None:
    """``--logdir``, ``--logdir_spec`` (with ``logdir``), ``--port``, ``--restart``, ``--timeout``, ``--idle-timeout``.

    With ``convert`` the values arrive parsed (the CLI: argparse reports a bad
    one); without it they arrive as typed, for the caller to parse.
    """
    from . import inputs

    def typed(parse: Callable[[Any], Any]) -> Callable[[str], Any] | None:
        return None if convert is None else convert(parse)

    if logdir:
        parser.add_argument("--logdir", help="directory (or gs:// s3:// hdfs:// URL) with event files")
        parser.add_argument(
            "--logdir_spec",
            "--logdir-spec",
            dest="logdir_spec",
            metavar="SPEC",
            help="several directories side by side, instead of --logdir: name1:/path1,name2:/path2",
        )
    parser.add_argument("--port", type=typed(inputs.port), metavar="N", help="serve on port N (default: a free one)")
    parser.add_argument("--restart", action="store_true", help="replace the running board for this logdir")
    parser.add_argument(
        "--timeout",
        type=typed(inputs.seconds),
        default=None,
        metavar="S",
        help=f"seconds to wait for TensorBoard to answer (default {DEFAULTS.start_timeout:g})",
    )
    parser.add_argument(
        "--idle-timeout",
        dest="idle_timeout",
        type=typed(inputs.idle_timeout),
        default=None,
        metavar="T",
        help="stop the board after T without a request, e.g. 2h or 30m (default: never)",
    )


#: The start options :func:`nbboard.api.start` takes by the same name.
START_ARGUMENTS = ("port", "timeout", "restart", "idle_timeout")


def start_arguments(parsed: Any) -> dict[str, Any]:
    """The keyword arguments of :func:`nbboard.api.start` that these options give, from either front end's
    parsed values (so a new start option is passed on in one place)."""
    return {name: getattr(parsed, name) for name in START_ARGUMENTS}
