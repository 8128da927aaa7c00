"""Figures the reliability suite measured, written to tests/artifacts/reliability.md for the README."""

from __future__ import annotations

from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "artifacts" / "reliability.md"


def record(scenario: str, figure: str) -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("a") as f:
        f.write(f"| {scenario} | {figure} |\n")
