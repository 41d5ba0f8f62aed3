"""Sub-commands of ``run.py``; every module here exposes ``register(subparsers)``."""
