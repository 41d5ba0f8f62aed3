"""Start and stop the real device stack (pcscd+vpcd, cupsd+ippeveprinter) for tests and the demo."""
