"""A stand-in for Colab's ``google.colab`` package, for tests only (Colab's runtime cannot run here).

What it fakes, and nothing more: the package's presence in the kernel (Colab's kernel imports it at
start-up, which is how nbboard knows it runs on Colab) and :mod:`google.colab.output`'s callback
registry, which Colab's front end calls when an output runs ``google.colab.kernel.invokeFunction``.
``google`` itself stays a namespace package (no ``google/__init__.py`` here), so ``google.protobuf``
still imports in the kernel and in the TensorBoard it starts.
"""

from google.colab import output

__all__ = ["output"]
