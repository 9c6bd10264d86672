"""``python -m embedder.cli``."""

from embedder.cli import main

if __name__ == "__main__":
    main()
