"""The quality benchmark: `python -m benchmarks.quality` (see
`__main__.py`)."""

from benchmarks.quality.report import TABLE_HEADERS  # noqa: F401
