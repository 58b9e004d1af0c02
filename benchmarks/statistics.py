"""Mean and standard error over seeds, as every benchmark reports them."""

import math

import numpy as np


def mean_and_error(values):
    """The mean and its standard error (the sample standard deviation over
    the square root of the count); the error is NaN for a single value."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float(values.mean()), float("nan")
    return (float(values.mean()),
            float(values.std(ddof=1) / math.sqrt(len(values))))


def plus_minus(mean, error, digits=4):
    """"mean ± error", or the mean alone where there is no error (one
    value)."""
    if not math.isfinite(error):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {error:.{digits}f}"
