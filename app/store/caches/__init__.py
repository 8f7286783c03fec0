"""Caches of derived data: transcoded frames and rendered images, frame tables, the shared Redis cache."""
