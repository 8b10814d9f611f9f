"""callback: telephone callback surveys, hotline spot checks and accurate sampling frames."""

from callback.errors import CallbackError

__all__ = ["CallbackError", "__version__"]

__version__ = "0.1.0"
