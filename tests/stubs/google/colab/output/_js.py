"""Stand-in for Colab's kernel-side half of ``google.colab.kernel.invokeFunction``.

Colab's contract, as documented by its ``register_callback``: an output's JavaScript calls
``google.colab.kernel.invokeFunction(name, args, kwargs)``; the front end asks the kernel to run
``callback(*args, **kwargs)`` and resolves the promise with the result's display data
(``{data: {mime: value}, metadata}``). The test's front end stand-in sends that request as an execution
of :func:`invoke_function`, whose value becomes the execute_result it hands back to the output.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

callbacks: dict[str, Callable[..., Any]] = {}


def register_callback(function_name: str, callback: Callable[..., Any]) -> None:
    callbacks[function_name] = callback


def invoke_function(function_name: str, json_args: str, json_kwargs: str) -> Any:
    """Run a registered callback with JSON arguments, as the front end asked; unknown names fail like Colab's."""
    callback = callbacks.get(function_name)
    if callback is None:
        raise ValueError(f"Function not found: {function_name}")
    return callback(*json.loads(json_args), **json.loads(json_kwargs))
