#!/usr/bin/env python3
"""The real TensorBoard of this interpreter, run as if some modules were not installed.

Usage: ``python tensorboard_without.py MODULE[,MODULE...] [TensorBoard args...]``. Importing a
listed module raises the ``ModuleNotFoundError`` Python raises for a package that is absent, from
the import statement inside TensorBoard's own code; everything else is the installed TensorBoard.
It reproduces, for instance, tensorboard 2.19 on a Python without setuptools
(``No module named 'pkg_resources'``) without building a second environment.
"""

from __future__ import annotations

import importlib.abc
import sys


class _Absent(importlib.abc.MetaPathFinder):
    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if fullname.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def main() -> None:
    hidden = set(sys.argv[1].split(","))
    for name in list(sys.modules):
        if name.partition(".")[0] in hidden:
            del sys.modules[name]
    sys.meta_path.insert(0, _Absent(hidden))
    sys.argv = ["tensorboard", *sys.argv[2:]]
    from tensorboard.main import run_main

    run_main()


if __name__ == "__main__":
    main()
