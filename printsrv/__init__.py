"""ktp-printsrv: card personalization and print server for the Indonesian e-KTP."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
__version__ = "0.1.0"
