# Colab's kernel has google.colab imported before the first cell runs; the stand-in kernel gets the same
# through PYTHONSTARTUP (IPython runs this file at start-up). Leaves no names in the user's namespace.
__import__("google.colab")
