"""Tools that look at the loss landscape along and around a solution.

Every function leaves the model's weights exactly as it found them, also
when it raises. Plots need matplotlib (``pip install keras-signadam[plots]``).
"""

from keras_signadam.landscape.evaluation import valley_floor
from keras_signadam.landscape.interpolation import interpolate
from keras_signadam.landscape.plots import plot_curve
from keras_signadam.landscape.plots import plot_slice_2d
from keras_signadam.landscape.plots import plot_walk
from keras_signadam.landscape.sharpness import hessian_top_eigenvalue
from keras_signadam.landscape.sharpness import sharpness
from keras_signadam.landscape.slices import filter_normalized_direction
from keras_signadam.landscape.slices import slice_1d
from keras_signadam.landscape.slices import slice_2d

__all__ = [
    "filter_normalized_direction",
    "hessian_top_eigenvalue",
    "interpolate",
    "plot_curve",
    "plot_slice_2d",
    "plot_walk",
    "sharpness",
    "slice_1d",
    "slice_2d",
    "valley_floor",
]
