"""The kernel, magic and CLI tests again, on the stacks where users are (``tests/run.sh`` runs this).

Legs, each a venv under ``.venvs/`` (git-ignored):

- ``colab`` (Colab's default runtime, Python 3.13) and ``colab-fallback`` (its fallback runtime, Python
  3.12; Kaggle's image is built on Colab's): Colab's published pip freeze of that runtime
  (``tests/colab/pip-freeze-3.*.txt``) is the constraint file for installing, first, what a Colab
  user has that nbboard and the test tools touch (IPython, ipykernel, TensorBoard, PyYAML, ... and,
  through the constraints, Colab's versions of all they pull in); then nbboard, as a user would
  (``pip install nbboard``, no constraints). Installing it, and then the test tools, must change
  none of the packages already there: a changed one fails the leg and prints the diff. A package
  nbboard adds that Colab ships at another version fails it too (the base would not be Colab's).
- ``newest``: the newest Python the package claims (3.13) with the newest release of everything.
- ``oldest``: the oldest Python it claims (3.10) with every dependency at the floor pyproject.toml
  declares, so the floors are proven, not guessed.

Every leg installs the wheel built from this checkout, not the source tree, and runs the tests from a
copy of ``tests/`` (no checkout on ``sys.path``), so a wheel missing its front end or its demo fails.
A venv is rebuilt only when its recipe changes (interpreter, pins, dependencies, test tools), so a
second local run costs only the tests (a reused ``newest`` keeps the releases it was built with:
``--rebuild`` refreshes it); CI starts clean and builds them all.

Usage: ``python tests/matrix.py [--leg NAME ...] [--rebuild] [-- PYTEST ARGS]``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / ".venvs"
REQUIREMENTS = ROOT / "tests" / "matrix-requirements.txt"
#: The kernel, magic and CLI tests (the browser, tunnel and reliability suites run in the main environment only).
TESTS = [
    "tests/test_magic.py",
    "tests/test_messages.py",  # a failed %board fails its cell (IPython's UsageError) on 7.34 too
    "tests/test_display.py",
    "tests/test_launcher.py",
    "tests/test_registry.py",
    "tests/test_lifecycle.py",
    "tests/test_packaging.py",
]
#: Colab's published pip freezes (name==version lines only), one per runtime: see the README's matrix section.
COLAB = ROOT / "tests" / "colab"
#: What every Colab user has installed that nbboard or the test tools touch. Installed first, at Colab's versions
#: (the freeze is the constraint file), with nbboard's declared dependencies and the test tools that Colab ships.
COLAB_BASE = [
    "ipython", "ipykernel", "ipywidgets", "traitlets", "jupyter-client", "notebook", "tornado", "tensorboard",
    "setuptools", "anywidget", "psutil", "pyyaml", "filelock", "requests",
]  # fmt: skip
#: Versions shown in the summary of each leg.
SHOWN = ["ipython", "ipykernel", "ipywidgets", "traitlets", "jupyter-client", "tensorboard", "setuptools", "anywidget"]
RECIPE = 2  # bump to rebuild every venv


@dataclass
class Leg:
    name: str
    python: str  # "3.12": the newest 3.12.x this machine has
    base: Path | None = None  # a requirements file installed first; nbboard must leave all of it as it is
    floors: bool = False  # install every dependency at its declared floor
    #: Held back where the leg's old releases break with a newer one they do not exclude themselves.
    era: list[str] = field(default_factory=list)
    #: The test files this leg runs (default: TESTS).
    tests: list[str] = field(default_factory=lambda: list(TESTS))


LEGS = [
    Leg("colab", "3.13", base=COLAB / "pip-freeze-3.13.txt"),  # Colab's default runtime
    # Its fallback runtime (Kaggle's is built on it): Colab's stack again on Python 3.12, so the install proof and the
    # magic's tests, not every file again.
    Leg(
        "colab-fallback",
        "3.12",
        base=COLAB / "pip-freeze-3.12.txt",
        tests=["tests/test_packaging.py", "tests/test_magic.py", "tests/test_messages.py"],
    ),
    # A fresh venv: pip picks the newest release of everything. The main suite runs every file on the newest
    # releases already (Python 3.11, from the checkout); this leg adds the wheel and the newest Python.
    Leg("newest", "3.13", tests=["tests/test_packaging.py", "tests/test_magic.py", "tests/test_messages.py"]),
    # tensorboard 2.12 predates NumPy 2 (it uses np.string_) without saying so; its users have NumPy 1.
    # ipykernel 7.3.0, the last for Python 3.10, loses a shell reply now and then (a raw send on the shell
    # socket from its channel thread; fixed in 7.4.0, ipython/ipykernel#1529, which needs 3.11): a cell then
    # never finishes, whatever it ran (CI saw `%load_ext nbboard` hang once, ENOTSOCK in the kernel's log).
    # IPython 7.34's users run ipykernel 6 (Colab: 6.17.1), so the floors leg does too.
    Leg("oldest", "3.10", floors=True, era=["numpy<2", "ipykernel<7"]),
]


class LegFailed(Exception):
    pass


@dataclass
class Result:
    leg: str
    ok: bool
    detail: str
    python: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    build_s: float = 0.0
    test_s: float = 0.0
    reused: bool = False


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leg", action="append", choices=[leg.name for leg in LEGS], help="run only this leg")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the venvs even if their recipe is unchanged")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest (default: the matrix test files)")
    args = parser.parse_args(argv)
    legs = [leg for leg in LEGS if not args.leg or leg.name in args.leg]
    VENVS.mkdir(exist_ok=True)
    started = time.monotonic()
    try:
        wheel = build_wheel()
    except LegFailed as e:
        print(f"matrix: could not build the wheel: {e}", flush=True)
        return 1
    wheel_s = time.monotonic() - started
    print(f"matrix: built {wheel.name} in {wheel_s:.0f} s", flush=True)
    # The venvs are made two at a time before any test runs (pip waits on disk and index as much as on CPU), then
    # each leg's tests run alone, so that no test shares the machine with an install.
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        prepared = list(pool.map(lambda leg: timed_prepare(leg, wheel, args.rebuild), legs))
    print(f"matrix: {len(legs)} venvs ready in {time.monotonic() - started - wheel_s:.0f} s", flush=True)
    results = [run_leg(leg, ready, args.pytest_args or leg.tests) for leg, ready in zip(legs, prepared, strict=True)]
    report(results, wheel_s, time.monotonic() - started)
    return 0 if all(r.ok for r in results) else 1


# ---------------------------------------------------------------------------
# building


def build_wheel() -> Path:
    """The wheel of this checkout, built from a clean copy (a stale build/ could smuggle in deleted files)."""
    dist = VENVS / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    ignore = shutil.ignore_patterns(
        ".git", ".venvs", "build", "dist", "*.egg-info", "node_modules", "artifacts", "__pycache__", ".*_cache"
    )
    with tempfile.TemporaryDirectory(prefix="nbboard-wheel-") as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(ROOT, src, ignore=ignore)
        pip(sys.executable, "wheel", "--no-deps", "-w", str(dist), str(src))
    (wheel,) = dist.glob("nbboard-*.whl")
    return wheel


def find_python(version: str) -> Path:
    """The newest ``version``.x interpreter: pyenv's, or one on PATH."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = sorted(
        (p for p in root.glob(f"{version}.*") if re.fullmatch(rf"{re.escape(version)}\.\d+", p.name)),
        key=lambda p: int(p.name.rsplit(".", 1)[1]),
    )
    if found:
        return found[-1] / "bin" / "python"
    which = shutil.which(f"python{version}")
    if which:
        return Path(which)
    raise LegFailed(f"no Python {version} on this machine (looked in {root} and on PATH)")


def pip(python: str | Path, *args: str) -> str:
    """Run pip quietly; on failure raise with its output (minus the noise of unused local indexes)."""
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_ROOT_USER_ACTION": "ignore"}
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [str(python), "-m", "pip", *args], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL
    )
    out = "\n".join(
        line
        for line in (done.stdout + done.stderr).splitlines()
        if "is ignored: it is neither a file nor a directory" not in line
    )
    if done.returncode != 0:
        raise LegFailed(f"pip {' '.join(args)} failed:\n{out}")
    return out


def freeze(python: Path) -> dict[str, str]:
    """{canonical name: version} of everything installed, setuptools and pip included."""
    out = pip(python, "freeze", "--all")
    versions = {}
    for line in out.splitlines():
        name, sep, version = line.partition("==")
        if sep:
            versions[canonical(name)] = version.strip()
        elif " @ " in line:
            versions[canonical(line.split(" @ ")[0])] = line.split(" @ ", 1)[1].strip()
    return versions


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower().strip()


def dependencies() -> list[str]:
    try:
        import tomllib
    except ImportError:  # Python 3.10: pip's own copy of the same parser
        from pip._vendor import tomli as tomllib  # type: ignore[no-redef]
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


def floors() -> list[str]:
    """``name==floor`` for every dependency declared as ``name>=floor``."""
    pins = []
    for dep in dependencies():
        match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([0-9][^,;\s]*)\s*", dep)
        if not match:
            raise LegFailed(f"cannot read a floor from the dependency {dep!r} (expected name>=version)")
        pins.append(f"{match[1]}=={match[2]}")
    return pins


def recipe(leg: Leg, python: Path) -> str:
    version = subprocess.run([str(python), "--version"], capture_output=True, text=True).stdout.strip()
    data = {
        "recipe": RECIPE,
        "leg": leg.__dict__,
        "python": version,
        "dependencies": dependencies(),
        "requirements": REQUIREMENTS.read_text(),
        "base": leg.base.read_text() if leg.base else "",
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def prepare(leg: Leg, wheel: Path, rebuild: bool) -> tuple[Path, bool]:
    """The leg's venv with nbboard (this wheel) and the test tools; returns (its python, reused)."""
    base_python = find_python(leg.python)
    venv = VENVS / leg.name
    python = venv / "bin" / "python"
    stamp = venv / "matrix-recipe"
    key = recipe(leg, base_python)
    reused = not rebuild and stamp.is_file() and stamp.read_text() == key and python.exists()
    if not reused:
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([str(base_python), "-m", "venv", str(venv)], check=True)
        if leg.base:
            pip(python, "install", "-c", str(leg.base), *colab_base(leg.base))
        (venv / "base-freeze.json").write_text(json.dumps(freeze(python) if leg.base else {}))
    base = json.loads((venv / "base-freeze.json").read_text())
    shipped = pins(leg.base) if leg.base else {}
    constraints = venv / "constraints.txt"

    # nbboard as a user installs it: with its dependencies, unconstrained (the floors leg: at its floors).
    constraints.write_text("\n".join(floors() + leg.era if leg.floors else []) + "\n")
    pip(python, "install", "-c", str(constraints), str(wheel))
    pip(python, "install", "--no-deps", "--force-reinstall", str(wheel))  # this run's code, same version number
    installed = freeze(python)
    expect_unchanged(base, installed, "installing nbboard")
    expect_colab_versions(shipped, base, installed)

    # The test tools, held to what is installed now, so they cannot move the stack under test.
    installed = freeze(python)
    constraints.write_text("".join(f"{n}=={v}\n" for n, v in installed.items() if n != "nbboard" and "://" not in v))
    pip(python, "install", "-c", str(constraints), "-r", str(REQUIREMENTS))
    installed = freeze(python)
    expect_unchanged(base, installed, "installing the test tools")
    if leg.floors:
        off = [pin for pin in floors() if not same_version(installed.get(canonical(pin.split("==")[0]), ""), pin)]
        if off:
            raise LegFailed(f"the floors are not what got installed: {off}")
    stamp.write_text(key)
    return python, reused


def pins(path: Path) -> dict[str, str]:
    """{canonical name: version} of a pip freeze's ``name==version`` lines."""
    found = {}
    for line in path.read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep and not line.startswith("#"):
            found[canonical(name)] = version.strip()
    return found


def colab_base(freeze_file: Path) -> list[str]:
    """The packages installed before nbboard on a Colab leg: what every Colab user has that nbboard or the
    test tools touch, nbboard's dependencies and the test tools, each only if Colab ships it."""
    shipped = pins(freeze_file)
    wanted = COLAB_BASE + [requirement_name(r) for r in dependencies()]
    wanted += [requirement_name(r) for r in REQUIREMENTS.read_text().splitlines() if r.strip() and r[0] != "#"]
    names = list(dict.fromkeys(canonical(n) for n in wanted))
    return [n for n in names if n in shipped]


def requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[\s]", requirement.strip(), maxsplit=1)[0]


def expect_colab_versions(shipped: dict[str, str], base: dict[str, str], after: dict[str, str]) -> None:
    """Fails the leg if nbboard added a package that Colab ships at another version: on Colab that package is
    already there, so the leg's base must install it first (add it to COLAB_BASE)."""
    off = [
        f"  {n}: added {after[n]}, Colab ships {shipped[n]}"
        for n in sorted(after)
        if n not in base and n in shipped and after[n] != shipped[n]
    ]
    if off:
        raise LegFailed(
            "installing nbboard added packages Colab ships at other versions (add them to COLAB_BASE):\n"
            + "\n".join(off)
        )


def expect_unchanged(before: dict[str, str], after: dict[str, str], step: str) -> None:
    """Fails the leg, with the diff, if ``step`` moved or removed a package that was installed before it."""
    moved = [f"  {n}: {before[n]} -> {after.get(n, 'removed')}" for n in sorted(before) if after.get(n) != before[n]]
    if moved:
        raise LegFailed(f"{step} changed packages that were already installed:\n" + "\n".join(moved))


def same_version(installed: str, pin: str) -> bool:
    """Whether ``installed`` is the version ``pin`` (name==version) names: 7.34.0 is 7.34."""
    a, b = installed, pin.split("==")[1]

    def parts(v: str) -> list[str]:
        p = v.split(".")
        while len(p) > 1 and p[-1] == "0":
            p.pop()
        return p

    return parts(a) == parts(b)


# ---------------------------------------------------------------------------
# running


def timed_prepare(leg: Leg, wheel: Path, rebuild: bool) -> tuple[Path, bool, float] | LegFailed:
    """:func:`prepare`, timed; a failure is returned, to be reported in the leg's turn."""
    started = time.monotonic()
    try:
        python, reused = prepare(leg, wheel, rebuild)
    except LegFailed as e:
        return e
    return python, reused, time.monotonic() - started


def run_leg(leg: Leg, ready: tuple[Path, bool, float] | LegFailed, pytest_args: list[str]) -> Result:
    print(f"\n=== matrix leg {leg.name} ===", flush=True)
    if isinstance(ready, LegFailed):
        print(f"matrix leg {leg.name}: {ready}", flush=True)
        return Result(leg.name, False, "; ".join(str(ready).splitlines()[:4]))
    python, reused, build_s = ready
    installed = freeze(python)
    version = subprocess.run([str(python), "--version"], capture_output=True, text=True).stdout.split()[-1]
    versions = {name: installed.get(name, "-") for name in SHOWN}
    print(
        f"Python {version}: " + ", ".join(f"{n} {v}" for n, v in versions.items()) + f" ({build_s:.0f} s to prepare)",
        flush=True,
    )
    suite = VENVS / leg.name / "suite"
    shutil.rmtree(suite, ignore_errors=True)
    shutil.copytree(ROOT / "tests", suite / "tests", ignore=shutil.ignore_patterns("artifacts", "__pycache__"))
    shutil.copy2(ROOT / "demo.ipynb", suite / "demo.ipynb")
    shutil.copy2(ROOT / "README.md", suite / "README.md")  # test_messages checks %board --help against it
    (suite / "pytest.ini").write_text(
        "[pytest]\ntimeout = 300\naddopts = -ra -p no:cacheprovider\nfilterwarnings = ignore::DeprecationWarning\n"
    )
    venv = VENVS / leg.name
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        # nothing of this machine's Jupyter or IPython set-up leaks in: kernels, config, startup files
        JUPYTER_DATA_DIR=str(venv / "jupyter" / "data"),
        JUPYTER_CONFIG_DIR=str(venv / "jupyter" / "config"),
        IPYTHONDIR=str(venv / "ipython"),
        NBBOARD_MATRIX_CHECKOUT=str(ROOT),  # tests/test_packaging.py: nbboard must not come from here
        PYTHONDONTWRITEBYTECODE="1",
    )
    started = time.monotonic()
    done = subprocess.run(
        [str(python), "-m", "pytest", "-q", *pytest_args], cwd=suite, env=env, stdin=subprocess.DEVNULL
    )
    test_s = time.monotonic() - started
    ok = done.returncode == 0
    detail = "passed" if ok else f"pytest exited with {done.returncode}"
    return Result(leg.name, ok, detail, version, versions, build_s, test_s, reused)


def report(results: list[Result], wheel_s: float, total_s: float) -> None:
    lines = [
        "| leg | Python | " + " | ".join(SHOWN) + " | prepare s | tests s | result |",
        "|---|---|" + "---|" * len(SHOWN) + "---|---|---|",
    ]
    for r in results:
        prep = f"{r.build_s:.0f}" + (" (reused)" if r.reused else "")
        cells = [r.leg, r.python, *(r.versions.get(n, "") for n in SHOWN), prep, f"{r.test_s:.0f}", r.detail]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(f"\nwheel built in {wheel_s:.0f} s; whole matrix {total_s:.0f} s")
    text = "\n".join(lines)
    print(f"\n=== matrix summary ===\n{text}", flush=True)
    artifacts = ROOT / "tests" / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / "matrix.md").write_text(text + "\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
