"""What a new user reads: failed `%board` cells fail, typos get a suggestion, help and list say what happens."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import nbformat
import psutil
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

import nbboard
from nbboard import cli
from tests.helpers import ROOT, nbboard_cli, tensorboards_serving
from tests.kernel import Kernel, widget_state


def _stderr(outputs: list[dict]) -> str:
    return "".join(o.get("text", "") for o in outputs if o["type"] == "stream" and o.get("name") == "stderr")


def _failed_cleanly(kernel: Kernel, line: str) -> tuple[str, list[dict]]:
    """Run a `%board` line that must fail the cell with IPython's UsageError; returns its message."""
    reply, outputs = kernel.execute(line)
    assert reply["status"] == "error" and reply["ename"] == "UsageError", (line, reply)
    assert not [o for o in outputs if o["type"] == "error"], "a traceback was shown"
    message = _stderr(outputs)
    assert message.startswith("UsageError: nbboard: "), message
    return message, outputs


# ---------------------------------------------------------------------------
# A %board that fails marks its cell failed, as IPython's own magics do


def test_failed_board_cells_fail_with_one_readable_message(kernel: Kernel, tmp_path: Path, demo_logs: Path) -> None:
    afile = tmp_path / "train.log"
    afile.write_text("x")
    message, _ = _failed_cleanly(kernel, f"%board --logdir {afile}")
    assert f"{afile} is a file, not a directory; --logdir takes the directory your training writes to" in message
    message, _ = _failed_cleanly(kernel, "%board --logidr logs")
    assert message.splitlines() == [
        "UsageError: nbboard: unknown option '--logidr': did you mean --logdir?",
        "  hint: %board --help shows every option",
    ]
    # A start that fails in TensorBoard itself: the cell fails and the board shows the failure.
    message, outputs = _failed_cleanly(kernel, f"%board --logdir {demo_logs} --no_such_flag=1")
    assert "TensorBoard exited with code" in message
    state = widget_state(outputs)
    assert state["status"] == "failed" and "no_such_flag" in state["error"]
    assert nbboard.list() == [] and tensorboards_serving(demo_logs) == []
    # And a cell that works still ends "ok".
    reply, _ = kernel.execute(f"%board --logdir {demo_logs}")
    assert reply["status"] == "ok"


def test_run_all_stops_at_a_failed_board(isolated: Path, tmp_path: Path) -> None:
    """nbclient (what papermill and CI pipelines run) stops at the failed cell; the next cell never runs."""
    afile = tmp_path / "events.txt"
    afile.write_text("x")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext nbboard"),
        nbformat.v4.new_code_cell(f"%board --logdir {afile}"),
        nbformat.v4.new_code_cell("print('the cell after a failed board ran')"),
    ]
    client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    with pytest.raises(CellExecutionError) as failed:
        client.execute()
    assert "UsageError" in str(failed.value) and "is a file, not a directory" in str(failed.value)
    text = "".join(o.get("text", "") for o in nb.cells[1].outputs)
    assert "UsageError: nbboard: " in text and "is a file, not a directory" in text
    assert nb.cells[2].outputs == [] and nb.cells[2].get("execution_count") is None


def test_first_output_while_starting_never_says_port_0(kernel: Kernel, demo_logs: Path) -> None:
    reply, outputs = kernel.execute(f"%board --logdir {demo_logs}")
    assert reply["status"] == "ok"
    shown = [o["data"]["text/plain"] for o in outputs if o["type"] in ("display_data", "update_display_data")]
    assert shown, outputs
    assert shown[0] == f"TensorBoard starting for {demo_logs}"
    assert not any("port 0" in text for text in shown)
    (inst,) = nbboard.list()
    assert shown[-1] == f"TensorBoard running on port {inst.port}: {inst.url}"


# ---------------------------------------------------------------------------
# Typos: the same suggestion from the CLI and the magic


@pytest.mark.parametrize(
    ("typo", "meant"),
    [("--logidr", "--logdir"), ("--prot", "--port"), ("--timout", "--timeout"), ("--restrat", "--restart")],
)
def test_typos_get_the_same_suggestion_everywhere(isolated: Path, typo: str, meant: str) -> None:
    result = nbboard_cli("start", typo, "x")
    assert result.returncode == 2
    assert f"unknown option '{typo}': did you mean {meant}?" in result.stderr
    assert "hint: nbboard start --help shows every option" in result.stderr
    assert "nbboard nbboard" not in result.stderr
    from nbboard import magic_args

    with pytest.raises(nbboard.NbboardError, match=f"did you mean {meant}\\?"):
        magic_args.parse(f"{typo} x")


def test_a_tensorboard_flag_before_double_dash_says_where_it_goes(isolated: Path) -> None:
    result = nbboard_cli("start", "runs", "--samples_per_plugin=scalars=500")
    assert result.returncode == 2
    assert "TensorBoard's own flags go after --" in result.stderr
    assert "nbboard start --logdir DIR -- --samples_per_plugin=scalars=500" in result.stderr


# ---------------------------------------------------------------------------
# Usage errors come before any look at the logdir


def test_usage_errors_come_before_the_logdir_note(isolated: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for args in (["--port", "abc"], ["--timeout", "nan"], ["--", "--port", "5"], ["--", "--logdir=x"]):
        result = nbboard_cli("start", str(empty), *args)
        assert result.returncode == 2, (args, result.stderr)
        assert "no event files" not in result.stderr and "note:" not in result.stderr, args
        assert "Traceback" not in result.stderr
    from nbboard import magic_args

    for line in (f"--logdir {empty} --port abc", f"--logdir {empty} --timeout inf"):
        with pytest.raises(nbboard.NbboardError):
            magic_args.parse(line)  # rejected while reading the line, before anything looks at the logdir


def test_usage_errors_come_before_the_logdir_note_in_the_magic(kernel: Kernel, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for line in ("%board --logdir empty --port abc", "%board --logdir empty --height 5"):
        message, outputs = _failed_cleanly(kernel, line)
        printed = "".join(o.get("text", "") for o in outputs if o["type"] == "stream")
        assert "no event files" not in printed, line


# ---------------------------------------------------------------------------
# Help and list say what happens


def _wait_dead(pid: int) -> None:
    """Until ``pid`` is gone or a zombie (a board the kernel started stays its unreaped child)."""
    from nbboard import procs

    assert procs.wait_gone([psutil.Process(pid)], 10) == []


def _readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"## {title}")
    return text[start : text.index("\n## ", start + 1)]


def test_board_help_names_every_option_the_readme_names(kernel: Kernel) -> None:
    reply, outputs = kernel.execute("%board --help")
    assert reply["status"] == "ok"
    help_text = "".join(o.get("text", "") for o in outputs if o["type"] == "stream")
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z_-]+", _readme_section("In a notebook"))) - {"--logidr"}
    assert {"--timeout", "--logdir", "--port", "--height", "--restart", "--no-display"} <= named
    missing = sorted(o for o in named if o not in help_text)
    assert missing == [], f"%board --help does not mention {missing}"
    from nbboard import magic_args

    for option in magic_args.OWN_OPTIONS:
        spelled = {
            f"--{option}",
            f"--{option.replace('_', '-')}",
        }  # --logdir_spec as TensorBoard spells it, --no-display
        assert any(s in help_text for s in spelled) or option == "pid", option
    assert "--pid N" in help_text


def test_list_help_says_stale_boards_stay_marked_until_start_or_kill(isolated: Path) -> None:
    for args in (["--help"], ["list", "--help"]):
        result = nbboard_cli(*args)
        assert result.returncode == 0
        assert "until the next start or kill" in " ".join(result.stdout.split()), args


def test_top_level_help_names_the_state_directory_and_the_exit_codes(isolated: Path) -> None:
    result = nbboard_cli("--help")
    text = " ".join(result.stdout.split())
    assert f"nbboard keeps its records, logs and locks in {os.environ['NBBOARD_HOME']}" in text
    assert "Exit codes: 0 done, 1 an error nbboard explains, 2 bad usage, 130 interrupted, 3 a bug in nbboard" in text


def test_list_marks_a_dead_board_until_start_or_kill(isolated: Path, demo_logs: Path, tmp_path: Path) -> None:
    """What the help says, done: a killed board stays in `list`, marked stale, until the next start or kill."""
    dead = nbboard.start(str(demo_logs))
    os.kill(dead.pid, signal.SIGKILL)
    _wait_dead(dead.pid)
    for _ in range(2):  # list changes nothing
        listed = nbboard_cli("list")
        assert listed.returncode == 0
        row = next(line for line in listed.stdout.splitlines() if line.startswith(str(dead.port)))
        assert "stale" in row and f"stale {dead.port}: process {dead.pid} has exited" in listed.stdout
        assert "clear them with: nbboard kill" in listed.stdout
    other = tmp_path / "other"
    other.mkdir()
    assert nbboard_cli("start", str(other)).returncode == 0  # the next start clears it
    assert str(dead.pid) not in nbboard_cli("list").stdout


def test_magic_list_words_its_hints_for_the_magic(kernel: Kernel, demo_logs: Path) -> None:
    empty = kernel.text("%board list")
    assert "start one with: %board --logdir DIR" in empty and "nbboard start" not in empty
    kernel.text(f"%board --logdir {demo_logs} --no-display")
    (inst,) = nbboard.list()
    os.kill(inst.pid, signal.SIGKILL)
    _wait_dead(inst.pid)
    stale = kernel.text("%board list")
    assert "stale" in stale and "clear them with: %board kill" in stale


def test_cli_main_turns_a_bug_into_exit_3_without_a_traceback(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from nbboard import api

    monkeypatch.setattr(api, "kill", lambda **_: 1 / 0)
    assert cli.main(["kill"]) == cli.EXIT_BUG == 3
    err = capsys.readouterr().err
    assert "internal error: ZeroDivisionError" in err and "Traceback" not in err


def test_interrupting_a_starting_board_fails_the_cell_and_keeps_it_recorded(kernel: Kernel, demo_logs: Path) -> None:
    """Jupyter's interrupt (SIGINT to the kernel) while `%board` waits for TensorBoard."""
    import time

    from nbboard import registry

    msg_id = kernel.kc.execute(f"%board --logdir {demo_logs}", stop_on_error=False)
    deadline = time.monotonic() + 60
    while not list(registry.boards_dir().glob("pid-*.json")) and time.monotonic() < deadline:
        time.sleep(0.005)
    kernel.km.interrupt_kernel()
    while True:
        reply = kernel.kc.get_shell_msg(timeout=60)
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    content = reply["content"]
    assert content["status"] == "error" and content["ename"] == "UsageError", content
    assert "interrupted" in content["evalue"] and "%board kill stops it" in content["evalue"]
    time.sleep(2)
    running = [i for i in nbboard.list() if i.logdir == str(demo_logs)]
    assert len(running) == 1 and len(tensorboards_serving(demo_logs)) == 1  # recorded, not orphaned
    assert kernel.text("%board kill").startswith("stopped TensorBoard")
