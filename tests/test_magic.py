"""``%board`` in a real IPython kernel (jupyter_client / nbclient), and in terminal IPython."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import psutil
import pytest
from nbclient import NotebookClient

import nbboard
from nbboard import magic_args
from nbboard.errors import UsageError
from tests.helpers import ROOT, crash, tensorboards_serving
from tests.kernel import Kernel, board_comm, widget_bundles, widget_state


def _board(kernel: Kernel, line: str) -> tuple[dict, list[dict], str]:
    outs = kernel.run(f"%board {line}")
    errors = [o for o in outs if o["type"] == "error"]
    assert not errors, "\n".join(errors[0]["traceback"])
    text = "".join(o.get("text", "") for o in outs if o["type"] == "stream")
    return widget_state(outs), widget_bundles(outs), text


def test_board_starts_shows_and_reuses(kernel: Kernel, demo_logs: Path) -> None:
    state, bundles, _ = _board(kernel, f"--logdir {demo_logs}")
    assert state["status"] == "running"
    (inst,) = nbboard.list()
    assert state["port"] == inst.port and state["pid"] == inst.pid and state["logdir"] == str(demo_logs)
    assert f"127.0.0.1:{inst.port}" in bundles[-1]["text/html"]  # the fallback for front ends without widgets
    assert state["height"] == 800

    state2, bundles2, _ = _board(kernel, f"--logdir {demo_logs}/ --height 500")
    # The live board is reused and its widget shown again (same model: no new comm, no JS re-sent).
    view = "application/vnd.jupyter.widget-view+json"
    assert bundles2[-1][view]["model_id"] == bundles[-1][view]["model_id"]
    assert state2 == {"height": 500}
    assert len(tensorboards_serving(demo_logs)) == 1
    assert [i.pid for i in nbboard.list()] == [inst.pid]


def test_board_survives_a_kernel_restart_and_is_reused(kernel: Kernel, demo_logs: Path) -> None:
    state, _, _ = _board(kernel, f"--logdir {demo_logs}")
    kernel.restart()
    assert psutil.Process(state["pid"]).is_running()  # TensorBoard outlived the kernel
    kernel.text("%load_ext nbboard")
    again, _, _ = _board(kernel, f"--logdir {demo_logs}")
    assert again["pid"] == state["pid"] and again["status"] == "running"


def test_board_kill_and_list(kernel: Kernel, demo_logs: Path) -> None:
    state, _, _ = _board(kernel, f"--logdir {demo_logs}")
    listed = kernel.text("%board list")
    assert str(state["port"]) in listed and "running" in listed
    killed = kernel.text("%board kill")
    assert f"stopped TensorBoard on port {state['port']} (pid {state['pid']}" in killed
    assert tensorboards_serving(demo_logs) == []
    assert "no TensorBoard running" in kernel.text("%board list")


def test_a_board_that_exits_while_another_cell_runs_is_shown_stopped_before_that_cell_ends(
    kernel: Kernel, demo_logs: Path, tmp_path: Path
) -> None:
    """The board's process ends (killed here, as a crash would end it) while a training cell runs: the kernel
    tells the widget's front end at once, in a comm update, that the board exited (the front end then drops its
    frame and Reload, so a program that takes the port next is never framed). A request from the front end
    would wait behind the running cell."""
    outs = kernel.run(f"%board --logdir {demo_logs}")
    comm_id = board_comm(outs)
    (inst,) = nbboard.list()
    done = tmp_path / "training-done"  # the "training" ends when the test has seen the update (or after 120 s)
    training = kernel.kc.execute(
        f"import os, time\nt = time.monotonic() + 120\n"
        f"while time.monotonic() < t and not os.path.exists({str(done)!r}):\n    time.sleep(0.05)",
        stop_on_error=False,
    )

    def next_message() -> dict:
        msg = kernel.kc.get_iopub_msg(timeout=60)
        state = msg["content"].get("execution_state")
        assert not (msg["parent_header"].get("msg_id") == training and state == "idle"), "the cell ended first"
        return msg

    msg = next_message()
    while not (msg["parent_header"].get("msg_id") == training and msg["content"].get("execution_state") == "busy"):
        msg = next_message()
    crash(inst.pid)
    while True:
        msg = next_message()
        data = msg["content"].get("data") or {}
        if (
            msg["msg_type"] == "comm_msg"
            and msg["content"].get("comm_id") == comm_id
            and data.get("method") == "update"
        ):
            state = data.get("state", {})
            if state.get("status") == "stopped":
                break
    assert f"TensorBoard on port {inst.port} (pid {inst.pid}) has exited" in state["note"]
    done.touch()
    while not (msg["parent_header"].get("msg_id") == training and msg["content"].get("execution_state") == "idle"):
        msg = kernel.kc.get_iopub_msg(timeout=60)


def test_widget_stop_button_stops_the_process(kernel: Kernel, demo_logs: Path) -> None:
    """The front end's Stop sends {"type": "stop"}; the same handler runs here from the kernel side."""
    _board(kernel, f"--logdir {demo_logs}")
    out = kernel.text(
        "from nbboard import embed\n"
        "import nbboard\n"
        "b = nbboard.display()\n"
        "b.view._on_front_end_msg(b.view, {'type': 'stop'}, [])\n"
        "print(b.view.status, '|', b.view.note)"
    )
    assert out.startswith("stopped | stopped TensorBoard on port")
    assert tensorboards_serving(demo_logs) == []


@pytest.mark.parametrize(
    "line",
    [
        "--logdir={d}",
        "--logdir {d}",
        "--logdir='{d}/'",
        '--logdir "{d}"',
        "-- logdir {d}",
        "\u2014 logdir {d}",
        "\u2014logdir={d}",
        "{d}",
    ],
)
def test_forgiving_parsing_in_the_kernel(kernel: Kernel, demo_logs: Path, line: str) -> None:
    state, _, text = _board(kernel, line.format(d=demo_logs))
    assert state.get("status") == "running", text
    assert state["logdir"] == str(demo_logs)


def test_python_variables_expand(kernel: Kernel, demo_logs: Path) -> None:
    kernel.text(f"where = {str(demo_logs)!r}")
    state, _, _ = _board(kernel, "--logdir $where")
    assert state["logdir"] == str(demo_logs)
    kernel.text("%board kill")
    state, _, _ = _board(kernel, "--logdir {where}")
    assert state["logdir"] == str(demo_logs)


def test_path_with_spaces(kernel: Kernel, demo_logs: Path, tmp_path: Path) -> None:
    spaced = tmp_path / "my logs"
    import shutil

    shutil.copytree(demo_logs, spaced)
    state, _, _ = _board(kernel, f'--logdir "{spaced}"')
    assert state["logdir"] == str(spaced) and state["status"] == "running"


def test_mistakes_get_a_suggestion_not_a_traceback(kernel: Kernel) -> None:
    out = kernel.text("%board --logidr logs")
    assert "did you mean --logdir?" in out
    out = kernel.text("%board --logdir logs --port banana")
    assert "invalid --port 'banana'" in out
    out = kernel.text('%board --logdir "unclosed')
    assert "close the quote" in out
    out = kernel.text("%board")
    assert "no TensorBoard is running" in out and "%board --logdir DIR" in out
    assert nbboard.list() == []


def test_empty_logdir_note_names_the_absolute_path(kernel: Kernel, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    state, _, text = _board(kernel, "--logdir empty")
    assert f"no event files (events.out.tfevents.*) under {tmp_path / 'empty'}" in text
    assert '"No dashboards are active"' in text and "kernel's working directory" in text
    assert state["status"] == "running"


def test_no_display_prints_the_link(kernel: Kernel, demo_logs: Path) -> None:
    _, bundles, text = _board(kernel, f"--logdir {demo_logs} --no-display")
    (inst,) = nbboard.list()
    assert bundles == [] and inst.url in text


def test_failure_is_shown_in_the_board(kernel: Kernel, demo_logs: Path) -> None:
    state, _, text = _board(kernel, f"--logdir {demo_logs} --no_such_flag=1")
    assert state["status"] == "failed" and "no_such_flag" in state["error"]
    assert "TensorBoard exited with code" in text
    assert nbboard.list() == []


def test_load_ext_defers_heavy_imports(isolated: Path, tmp_path: Path) -> None:
    """With the standby off; with it on, only its background thread imports more (tests/test_speed_mechanisms.py)."""
    kernel = Kernel(tmp_path)
    try:
        kernel.text("%config BoardMagics.standby = False")
        kernel.text("%load_ext nbboard")
        out = kernel.text(
            "import sys; print(sorted(m for m in ('nbboard.api', 'nbboard.registry', 'anywidget', 'requests') if m in sys.modules))"
        )
        assert out.strip() == "[]"
        kernel.text("%reload_ext nbboard")
    finally:
        kernel.shutdown()


def test_terminal_ipython_prints_the_url(isolated: Path, demo_logs: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "IPython",
            "--no-banner",
            "--colors=NoColor",
            "-c",
            f"%load_ext nbboard\n%board --logdir {demo_logs}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    (inst,) = nbboard.list()
    assert inst.url in result.stdout and "started TensorBoard" in result.stdout
    assert "ssh -L" in result.stdout


def test_demo_notebook_runs_top_to_bottom(isolated: Path, tmp_path: Path) -> None:
    nb = nbformat.read(ROOT / "demo.ipynb", as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = {c.source: c.outputs for c in nb.cells if c.cell_type == "code"}
    board = next(o for src, o in outputs.items() if src.startswith("%board --logdir"))
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in board)
    killed = "".join(o.get("text", "") for o in outputs["%board kill --logdir nbboard-demo/logs"])
    assert "stopped TensorBoard on port" in killed
    # With no board running, `%board` alone found the demo's event files and started a board on them...
    found = "".join(o.get("text", "") for o in outputs["%board"])
    assert f"no logdir given; found event files in {tmp_path / 'nbboard-demo'}" in found
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs["%board"])
    # ...which `%board kill` stopped, with the standby.
    assert "stopped TensorBoard on port" in "".join(o.get("text", "") for o in outputs["%board kill"])
    assert nbboard.list() == []


def test_magic_parser_cases() -> None:
    parse = magic_args.parse
    assert parse("--logdir=logs").logdir == "logs"
    assert parse("— logdir logs").notes and parse("— logdir logs").logdir == "logs"
    assert parse("–logdir logs").logdir == "logs"
    cmd = parse("--logdir logs --samples_per_plugin scalars=500 --reload_interval=5 --bind_all")
    assert cmd.extra == ("--samples_per_plugin=scalars=500", "--reload_interval=5", "--bind_all")
    assert parse("--logdir logs --tunnel").tunnel == "auto"
    assert parse("--logdir logs --tunnel localtunnel").tunnel == "localtunnel"
    assert parse("kill --port 6006").port == 6006 and parse("stop").action == "kill"
    assert parse("list").action == "list"
    for bad, says in [
        ("--logdri x", "did you mean --logdir?"),
        ("--prot 1", "did you mean --port?"),
        ("--logdir", "--logdir needs a value"),
        ("--logdir x --height tall", "invalid --height"),
        ("--logdir x --tunnel carrier-pigeon", "carrier-pigeon"),
        ("list --port 1", "takes no options"),
        ("a b", "unexpected"),
    ]:
        with pytest.raises(UsageError) as err:
            parse(bad)
        assert says in str(err.value), bad
    assert json.dumps(parse("--logdir x").__dict__)  # plain data


def test_every_setting_is_one_magic_option_with_its_default_and_help() -> None:
    """BoardConfig says each setting once: c.BoardMagics.<name> exists for each, with the field's default and
    help, and what a user configures reaches the API's config ("" idle timeout meaning never)."""
    from traitlets.config import Config

    from nbboard import config, magics

    traits = magics.BoardMagics.class_traits(config=True)
    assert set(traits) == {f.name for f in config.settings()}
    for f in config.settings():
        assert traits[f.name].help == f.metadata["help"]
        assert traits[f.name].default_value == ("" if f.default is None else f.default)
    configured = magics.BoardMagics(None, config=Config({"BoardMagics": {"height": 600, "idle_timeout": "2h"}}))
    assert configured.board_config() == config.BoardConfig(height=600, idle_timeout="2h")
    assert magics.BoardMagics(None).board_config() == config.BoardConfig()


def test_the_cli_and_the_magic_describe_each_start_option_alike() -> None:
    """One definition of the start options: each one's spelling and help text shows in `nbboard start --help`
    and in `%board --help` alike, so the two front ends cannot drift apart."""
    import argparse

    from nbboard import cli, options

    shared = argparse.ArgumentParser(add_help=False)
    options.add_start_options(shared)
    cli_help = " ".join(cli.build_parser().commands["start"].format_help().split())  # type: ignore[attr-defined]
    magic_help = " ".join(magic_args.USAGE.split())
    for action in shared._actions:
        assert action.option_strings[0] in cli_help and action.help in cli_help, action.dest
        if action.dest != "logdir":  # the magic's usage names --logdir in its first line
            assert f"{action.option_strings[0]} " in magic_help and action.help in magic_help, action.dest
