"""How optimizer state is stored: one codec per state, chosen in `build`.

An optimizer declares its per-parameter states once, as `Moment`s (name,
and the range its values are known to lie in). `build` picks one codec for
each from `state_dtype`; update rules then only ever call

    value = codec.decode(stored, dtype, bound)
    stored = codec.encode(value, random_bits, bound)

and never ask how the state is stored. `bound` is the state's known range
at that step (|value| <= bound), which a codec with a fixed range of codes
uses to spread its codes; the exact codecs ignore it. `random_bits` is a
callable returning 16 uniform random bits (int32) per component, called
only by the codecs that round stochastically (`low_precision.py`), so the
exact codecs cost no hash.

The codecs (``state_dtype``):

- `Exact` (None, "float32"): the value in its compute dtype (float32, or
  float64 for float64 variables).
- `BFloat16` ("bfloat16"): stochastic rounding to bfloat16.
- `Int8` ("int8", bounded states only): the code ``SR(127 x / bound)``.
- `Int8SquareRoot` ("int8", non-negative states declared
  ``square_root=True``): the code ``SR(127 sqrt(x / bound))``, read as
  ``bound (q / 127)**2``; finest where x is small, where Adam's
  ``1 / sqrt(v)`` is steepest.

A new way to store state is one new class with `dtype`, `decode` and
`encode`, and one entry in `codec_for`. A codec whose codes are safe only
for some hyperparameters says so in a method the update rule calls
(`Int8SquareRoot.check_ratio_decays`).
"""

import dataclasses

import numpy as np
from keras import ops

from keras_signadam import checks
from keras_signadam.optimizers import bias_correction
from keras_signadam.optimizers import low_precision

STATE_DTYPES = ("float32", "bfloat16", "int8")


@dataclasses.dataclass(frozen=True)
class Moment:
    """A per-parameter state an optimizer keeps.

    `bounded`: its values satisfy |x| <= bound, with the bound the update
    rule passes (1 unless it says otherwise), so it can be stored as 8-bit
    codes. `square_root`: it is non-negative and int8 keeps the code of
    its square root.
    """

    name: str
    bounded: bool = False
    square_root: bool = False


def check_state_dtype(value, moments, optimizer_name):
    """`state_dtype` for an optimizer whose states are `moments`."""
    if value is None:
        return None
    checks.check_choice("state_dtype", value, STATE_DTYPES)
    if not moments:
        raise ValueError(
            f"{optimizer_name} keeps no per-parameter state, so "
            "`state_dtype` does not apply; leave it None. Received: "
            f"state_dtype={value!r}")
    unbounded = [m.name for m in moments if not m.bounded]
    if value == "int8" and unbounded:
        raise ValueError(
            f"{optimizer_name}'s moments are not bounded ("
            f"{', '.join(unbounded)}), so they cannot be stored as 8-bit "
            "codes; `state_dtype=\"int8\"` is for SignAdam and SignAdamPP "
            "without error feedback. Use 'bfloat16'. Received: "
            "state_dtype='int8'")
    return value


class Exact:
    """The value as computed, in the state variable's dtype."""

    def __init__(self, dtype=None):
        # None: the model variable's compute dtype (`state.compute_dtype`).
        self.dtype = dtype

    def decode(self, stored, dtype, bound=1.0):
        return ops.cast(stored, dtype)

    def encode(self, value, random_bits, bound=1.0, dtype=None):
        return ops.cast(value, dtype)


class BFloat16:
    """Stochastically rounded bfloat16 (unbiased: E[stored] = value)."""

    dtype = "bfloat16"

    def decode(self, stored, dtype, bound=1.0):
        return ops.cast(stored, dtype)

    def encode(self, value, random_bits, bound=1.0, dtype=None):
        return low_precision.round_to_bfloat16(value, random_bits())


class Int8:
    """The code ``SR(127 x / bound)`` of x in [-bound, bound]."""

    dtype = "int8"
    square_root = False

    def decode(self, stored, dtype, bound=1.0):
        x = low_precision.decode_int8(stored, dtype, self.square_root)
        return x * ops.cast(bound, dtype)

    def encode(self, value, random_bits, bound=1.0, dtype=None):
        value = ops.cast(value, "float32")
        bound = ops.cast(bound, "float32")
        # bound = 0 only where the value is 0 too (no step taken yet).
        unit = ops.where(bound > 0, value / ops.maximum(bound, 1e-38),
                         ops.zeros_like(value))
        return low_precision.encode_int8(unit, random_bits(),
                                         self.square_root)


class Int8SquareRoot(Int8):
    """The code ``SR(127 sqrt(x / bound))`` of x in [0, bound]."""

    square_root = True

    def check_ratio_decays(self, name, beta_1, beta_2):
        """Refuses decay rates for which Adam's m / sqrt(v), with v stored
        in these codes, has no finite bound (`bias_correction.py`): 8-bit
        codes rounded against each other could reach it."""
        if not bias_correction.bounded_steps(float(np.float32(beta_1)),
                                             beta_2):
            raise ValueError(
                "`state_dtype='int8'` needs beta_1**2 < beta_2, which keeps "
                "every step bounded when the moments are rounded. Received: "
                f"{name}={beta_1!r} with beta_2={beta_2!r}")


def check_ratio_decays(state_dtype, moment, name, beta_1, beta_2):
    """The check of the codec that stores `moment` for the decay rates of
    a ratio m / sqrt(v) (codecs without one accept any)."""
    check = getattr(codec_for(state_dtype, moment), "check_ratio_decays",
                    None)
    if check is not None:
        check(name, beta_1, beta_2)


def codec_for(state_dtype, moment):
    """The codec that stores `moment` with `state_dtype`."""
    if state_dtype is None or state_dtype == "float32":
        return Exact(state_dtype)
    if state_dtype == "bfloat16":
        return BFloat16()
    return Int8SquareRoot() if moment.square_root else Int8()


class StoredMoment:
    """One moment of every model variable: its state variables (None where
    Keras overwrites the variable with its gradient) and their codec."""

    def __init__(self, moment, codec, variables):
        self.moment = moment
        self.codec = codec
        self.variables = variables

    def __getitem__(self, index):
        return self.variables[index]

    def __iter__(self):
        return iter(self.variables)

    def __len__(self):
        return len(self.variables)
