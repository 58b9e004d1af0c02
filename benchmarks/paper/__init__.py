"""The paper's experiments (Wang et al., 2019, signADAM++), at the scale
of a 2-core machine: `python -m benchmarks.paper` (see `__main__.py`)."""

from benchmarks.paper.tables import TABLE_HEADERS  # noqa: F401
