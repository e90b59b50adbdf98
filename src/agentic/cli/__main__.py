"""``python -m agentic.cli``: the same as the ``agentic`` script."""

from agentic.cli import main

if __name__ == "__main__":
    main()
