"""Developer scripts, run as files (``python3 scripts/bootstrap.py``); a package only so tests import them."""
