"""callback: telephone callback surveys, hotline spot checks and accurate sampling frames."""

from callback.errors import CallbackError
from callback.hookspecs import hookimpl

__all__ = ["CallbackError", "__version__", "hookimpl"]

__version__ = "0.1.0"
