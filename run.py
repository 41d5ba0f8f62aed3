"""The one entry point of ktp-printsrv: ``python run.py --help``."""

from printsrv.cli import main

if __name__ == "__main__":
    main()
