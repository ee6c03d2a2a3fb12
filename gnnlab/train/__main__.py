"""``python -m gnnlab.train`` is ``gnnlab-train``."""
from gnnlab.cli import train_main

if __name__ == "__main__":
    train_main()
