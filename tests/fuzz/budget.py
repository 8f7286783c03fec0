"""How hard the fuzzers try: a small, reproducible budget in `make test`, a large random one in `make fuzz`.

Why: every test run must stay short and never flake, so by default Hypothesis derandomizes (the same
examples every run) and keeps no example database. `make fuzz` sets FOVEA_FUZZ_EXAMPLES (examples per
test) and passes a printed `--hypothesis-seed`, so a failure it finds can be replayed with that seed.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

DEFAULT_EXAMPLES = 50
LONG_RUN = "FOVEA_FUZZ_EXAMPLES" in os.environ


def examples(default: int = DEFAULT_EXAMPLES) -> int:
    """Examples per fuzz test: `default` normally, FOVEA_FUZZ_EXAMPLES in a long run."""
    return int(os.environ.get("FOVEA_FUZZ_EXAMPLES", default))


def fuzz_settings(default_examples: int = DEFAULT_EXAMPLES) -> settings:
    """Hypothesis settings for a test that talks to a live server (slow examples, no deadline)."""
    reproducible = {} if LONG_RUN else {"derandomize": True, "database": None}
    return settings(
        max_examples=examples(default_examples),
        deadline=None,
        print_blob=True,
        **reproducible,  # type: ignore[arg-type]
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.function_scoped_fixture,
        ],
    )
