"""Run the command-line interface as ``python -m callback``."""

from callback.cli import main

if __name__ == "__main__":
    main()
