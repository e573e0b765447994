"""Cross-cutting pieces, one concern a module."""
