"""Errors a user can act on.

Every failure nbboard expects carries the context a user needs (the port, the
logdir, the tail of TensorBoard's output) and a ``hint`` naming what to type
instead. The CLI and the magic print ``str(error)``; they never show a
traceback for these.
"""

from __future__ import annotations


class NbboardError(Exception):
    """Base class: a message for the user plus an optional next step."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class UsageError(NbboardError):
    """The arguments cannot be understood as given."""


class TensorBoardNotInstalledError(NbboardError):
    def __init__(self, detail: str = "") -> None:
        super().__init__(
            "TensorBoard is not installed in this Python environment" + (f" ({detail})" if detail else ""),
            "pip install tensorboard",
        )


class PortInUseError(NbboardError):
    def __init__(self, port: int, owner: str = "") -> None:
        who = f" by {owner}" if owner else " by another program"
        super().__init__(
            f"port {port} is in use{who}",
            "pick another --port, or leave --port out to get a free one",
        )
        self.port = port


#: TensorBoard start-up failures users meet often, and their fix (what the output says -> what to type).
_KNOWN_CAUSES = (
    (
        "No module named 'pkg_resources'",
        "TensorBoard before 2.21 needs setuptools' pkg_resources, which setuptools 81 removed: "
        "pip install 'setuptools<81', or pip install -U tensorboard",
    ),
    ("np.string_", "this TensorBoard predates NumPy 2: pip install -U tensorboard (or 'numpy<2')"),
)


class StartFailedError(NbboardError):
    """TensorBoard exited before it began serving."""

    def __init__(self, exit_code: int | None, output_tail: str, log_path: str) -> None:
        tail = output_tail.strip() or "(TensorBoard printed nothing)"
        hints = [fix for cause, fix in _KNOWN_CAUSES if cause in output_tail]
        if log_path:
            hints.append(f"full log: {log_path}")
        super().__init__(
            f"TensorBoard exited with code {exit_code} before it was ready:\n{_indent(tail)}", "; ".join(hints)
        )
        self.exit_code = exit_code
        self.output_tail = output_tail
        self.log_path = log_path


class StartTimedOutError(NbboardError):
    """TensorBoard did not answer in time; it has been stopped, not left behind."""

    def __init__(self, timeout: float, output_tail: str) -> None:
        tail = output_tail.strip() or "(TensorBoard printed nothing)"
        super().__init__(
            f"TensorBoard did not answer within {timeout:g} s and was stopped. Its last output:\n{_indent(tail)}",
            "a large logdir or a slow disk can delay start-up: try --timeout 120",
        )
        self.timeout = timeout
        self.output_tail = output_tail


class RegistryError(NbboardError):
    """The registry directory cannot be used (read-only, full, wrong owner)."""


class NoSuchBoardError(NbboardError):
    """A selector (port, pid, logdir) matched no instance."""


class TunnelError(NbboardError):
    """A tunnel could not be opened, found or closed."""


def shown(text: object, limit: int = 120) -> str:
    """``text`` fit for a one-line message: control characters escaped, the middle of a long one elided.

    Paths and URLs users give can be megabytes long or hold newlines and NUL bytes; an error must
    still read as one line and name them recognisably.
    """
    value = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    if len(value) > limit:
        keep = (limit - 1) // 2
        value = f"{value[:keep]}…{value[-keep:]} ({len(str(text))} characters)"
    return value


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())
