"""A real IPython kernel for tests: run a cell, get its outputs, restart it."""

from __future__ import annotations

import os
import queue
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager


class Kernel:
    def __init__(self, cwd: Path, env: dict[str, str] | None = None) -> None:
        """``env``: variables for this kernel only, over this process's environment."""
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(cwd=str(cwd), env={**os.environ, **(env or {})})
        self._connect()

    def _connect(self) -> None:
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(
        self, code: str, timeout: float = 120, on_output: Callable[[dict[str, Any]], None] | None = None
    ) -> list[dict[str, Any]]:
        """Execute ``code``; returns its iopub outputs (streams, display data, errors), each also handed to
        ``on_output`` as it arrives."""
        return self._outputs(self.kc.execute(code, stop_on_error=False), code, timeout, on_output)

    def _outputs(
        self, msg_id: str, code: str, timeout: float, on_output: Callable[[dict[str, Any]], None] | None = None
    ) -> list[dict[str, Any]]:
        outputs: list[dict[str, Any]] = []
        while True:
            try:
                msg = self.kc.get_iopub_msg(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"cell did not finish in {timeout} s: {code!r}") from None
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "status" and msg["content"]["execution_state"] == "idle":
                return outputs
            if kind in (
                "stream",
                "display_data",
                "execute_result",
                "error",
                "update_display_data",
                "comm_open",
                "comm_msg",
            ):
                outputs.append({"type": kind, **msg["content"]})
                if on_output is not None:
                    on_output(outputs[-1])

    def execute(self, code: str, timeout: float = 120) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Run ``code``; returns its execute_reply content and its outputs.

        The reply's ``status`` ("ok" or "error", with ``ename``) is what marks a notebook cell failed:
        nbclient raises on it and "Run all" stops there.
        """
        # One cell at a time, as a user runs them: a failed cell must not abort the next request, which
        # ipykernel 6 does (stop_on_error) to any request that arrives within a moment of the failure.
        msg_id = self.kc.execute(code, stop_on_error=False)
        outputs = self._outputs(msg_id, code, timeout)
        while True:
            reply = self.kc.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"], outputs

    def text(self, code: str) -> str:
        outs = self.run(code)
        errors = [o for o in outs if o["type"] == "error"]
        assert not errors, "\n".join(errors[0]["traceback"])
        return "".join(o.get("text", "") for o in outs if o["type"] == "stream")

    def custom(self, comm_id: str, content: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        """Send a widget's custom message as its front end does (anywidget's ``model.send``); returns the
        content of the widget's first custom message back."""
        self.kc.shell_channel.send(
            self.kc.session.msg("comm_msg", {"comm_id": comm_id, "data": {"method": "custom", "content": content}})
        )
        while True:
            msg = self.kc.get_iopub_msg(timeout=timeout)
            data = msg["content"].get("data") or {}
            if (
                msg["msg_type"] == "comm_msg"
                and msg["content"].get("comm_id") == comm_id
                and data.get("method") == "custom"
            ):
                return data["content"]

    def restart(self) -> None:
        self.kc.stop_channels()
        self.km.restart_kernel(now=False)
        self._connect()

    def shutdown(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=False)


def widget_bundles(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        o["data"]
        for o in outputs
        if o["type"] in ("display_data", "update_display_data")
        and "application/vnd.jupyter.widget-view+json" in o["data"]
    ]


def board_comm(outputs: list[dict[str, Any]]) -> str:
    """The comm id of the board widget opened by these outputs."""
    (comm_id,) = [o["comm_id"] for o in outputs if o["type"] == "comm_open" and "status" in o["data"].get("state", {})]
    return comm_id


def widget_state(outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """The board widget's last synced state, from its comm messages."""
    state: dict[str, Any] = {}
    for o in outputs:
        if o["type"] == "comm_open":
            state.update(o["data"].get("state", {}))
        elif o["type"] == "comm_msg" and o["data"].get("method") == "update":
            state.update(o["data"].get("state", {}))
    return state
