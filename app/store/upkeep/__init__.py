"""Keeping the store right over time: deletion, deferred blob deletion, garbage collection, fixity checks."""
