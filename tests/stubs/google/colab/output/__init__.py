"""Stand-in for ``google.colab.output``: only :func:`register_callback` (see ``_js``)."""

from google.colab.output._js import register_callback

__all__ = ["register_callback"]
