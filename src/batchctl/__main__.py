"""`python -m batchctl`."""

from batchctl.cli.app import main

if __name__ == "__main__":
    main()
