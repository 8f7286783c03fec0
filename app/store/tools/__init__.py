"""Command-line tools over the store (`fovea import`, `fovea verify`, `fovea transcode`): no terminal code."""
