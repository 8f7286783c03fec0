"""Stored Part 10 files rewritten into another transfer syntax, by the engine WADO-RS uses."""
