"""The slow-link benchmark: `python -m benchmarks.slow_link` (see
`__main__.py`)."""

from benchmarks.slow_link.tables import TABLE_HEADERS  # noqa: F401
