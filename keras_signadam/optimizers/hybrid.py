import re

import keras

from keras_signadam import compat
from keras_signadam.optimizers import wrapping

# The selectors `adaptive` takes by name; any other string is a regular
# expression searched in the variable's path.
OUTPUT, VECTORS = "output", "vectors"
DEFAULT_ADAPTIVE = (OUTPUT, VECTORS)


@keras.saving.register_keras_serializable(package="keras_signadam")
class Hybrid(keras.optimizers.Optimizer):
    """Sign updates for most variables, an adaptive optimizer for the
    sensitive ones, in one optimizer.

    Zhao et al. (2025) find that on language models Adam's per-parameter
    adaptivity matters most in the last layer and the normalization
    layers: the rest trains as well without it. `Hybrid` gives each model
    variable one of two optimizers, chosen once, when it is built, by
    `adaptive`:

    - `"output"`: the variables of the output layer (the layer of the last
      trainable variable, which is the last layer in a `Sequential` or
      functional model);
    - `"vectors"`: the variables with at most one dimension: biases,
      normalization scales and offsets (an `Embedding` table and every
      kernel have two or more);
    - any other string: a regular expression searched in the variable's
      path (`variable.path`, such as `"dense_1/kernel"`), e.g.
      `"embedding"` or `"^transformer/.*norm"`.

    A variable any selector picks is updated by `adaptive_optimizer`
    (default: Keras's `Adam()`); every other variable by `sign_optimizer`
    (default: `SignAdamPP()`). Non-finite gradient components are zeroed
    before the adaptive optimizer sees them, as the package's optimizers
    treat them. Each keeps its own state, hyperparameters,
    learning rate, weight decay and aggregation: with
    `aggregation="majority_vote"` on the sign optimizer, only its
    variables are voted on; the adaptive ones are summed in float32.
    `optimizer.assignment` maps each variable's path to `"sign"` or
    `"adaptive"` once built, and `optimizer.bytes_sent(replicas)` says
    what one replica sends per step.

    `optimizer.learning_rate` is the sign optimizer's; setting it (as
    `LearningRateScheduler` and `ReduceLROnPlateau` do) scales the adaptive
    optimizer's rate by the same factor, keeping their ratio.
    `optimizer.iterations` is the sign optimizer's, and so are
    `sparsity` and `nonfinite_count`; the callbacks of
    `keras_signadam.callbacks` act on the sign optimizer
    (`optimizer.sign_optimizer.threshold`). Keras's own
    arguments (`weight_decay`, `clipnorm`, `use_ema`, ...) are set on the
    inner optimizers; the hybrid refuses them.

    Args:
        sign_optimizer: The optimizer of the other variables. Defaults to
            `None`: `SignAdamPP()`.
        adaptive_optimizer: The optimizer of the variables `adaptive`
            picks. Defaults to `None`: `keras.optimizers.Adam()`.
        adaptive: A selector or a list of selectors (above); an empty
            list gives every variable to `sign_optimizer`. Defaults to
            `("output", "vectors")`.
        name: The optimizer's name. Defaults to `None`: a unique name
            from the class name.

    References:
        - [Zhao et al., 2025, Deconstructing What Makes a Good Optimizer
          for Autoregressive Language Models](
          https://arxiv.org/abs/2407.07972)
    """

    def __init__(self, sign_optimizer=None, adaptive_optimizer=None,
                 adaptive=DEFAULT_ADAPTIVE, name=None, **kwargs):
        wrapping.refuse_keras_arguments(
            "Hybrid", kwargs, "`sign_optimizer` or `adaptive_optimizer`")
        super().__init__(learning_rate=0.0, name=name)
        import keras_signadam as ks

        wrapping.check_optimizer("sign_optimizer", sign_optimizer)
        wrapping.check_optimizer("adaptive_optimizer", adaptive_optimizer)
        self.sign_optimizer = sign_optimizer or ks.SignAdamPP()
        self.adaptive_optimizer = (adaptive_optimizer
                                   or keras.optimizers.Adam())
        if self.sign_optimizer is self.adaptive_optimizer:
            raise ValueError(
                "`sign_optimizer` and `adaptive_optimizer` must be two "
                "optimizers, not one object.")
        self.adaptive = check_selectors(adaptive)
        self.assignment = {}

    # ------------------------------------------------------- assignment
    def picks(self, variable, var_list):
        """Whether `adaptive` gives `variable` (one of `var_list`) to the
        adaptive optimizer."""
        path = variable.path
        output = _layer_of(var_list[-1].path) if var_list else None
        for selector in self.adaptive:
            if selector == OUTPUT:
                if _layer_of(path) == output:
                    return True
            elif selector == VECTORS:
                if len(variable.shape) <= 1:
                    return True
            elif re.search(selector, path):
                return True
        return False

    def _adaptive(self, variable):
        """Whether the built optimizer gives `variable` to the adaptive
        part."""
        return self._adaptive_keys[compat.variable_key(self, variable)]

    def _split(self, grads, variables):
        sign, adaptive = ([], []), ([], [])
        for g, v in zip(grads, variables):
            part = adaptive if self._adaptive(v) else sign
            part[0].append(g)
            part[1].append(v)
        return sign, adaptive

    # ----------------------------------------------------------- Keras
    def build(self, var_list):
        var_list = list(var_list)
        self._adaptive_keys = {compat.variable_key(self, v):
                               self.picks(v, var_list) for v in var_list}
        self.assignment = {v.path: "adaptive" if self._adaptive(v) else
                           "sign" for v in var_list}
        sign, adaptive = self._split(var_list, var_list)
        self.sign_optimizer.build(sign[1])
        self.adaptive_optimizer.build(adaptive[1])
        super().build(var_list)

    @property
    def variables(self):
        return (self._variables + self.sign_optimizer.variables
                + self.adaptive_optimizer.variables)

    def apply(self, grads, trainable_variables=None):
        trainable_variables = wrapping.built_for(self, trainable_variables)
        sign, adaptive = self._split(grads, trainable_variables)
        if sign[1]:
            self.sign_optimizer.apply(*sign)
        if adaptive[1]:
            # Non-finite components reach no parameter and no state, as
            # with the package's own optimizers.
            self.adaptive_optimizer.apply(
                [None if g is None else wrapping.finite(g)
                 for g in adaptive[0]],
                adaptive[1])

    @property
    def learning_rate(self):
        return self.sign_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        previous = float(keras.ops.convert_to_numpy(
            self.sign_optimizer.learning_rate))
        self.sign_optimizer.learning_rate = value
        if previous > 0:
            factor = float(keras.ops.convert_to_numpy(value)) / previous
            self.adaptive_optimizer.learning_rate = float(
                keras.ops.convert_to_numpy(
                    self.adaptive_optimizer.learning_rate)) * factor

    @property
    def iterations(self):
        return self.sign_optimizer.iterations

    def finalize_variable_values(self, var_list):
        sign, adaptive = self._split(var_list, var_list)
        self.sign_optimizer.finalize_variable_values(sign[1])
        self.adaptive_optimizer.finalize_variable_values(adaptive[1])

    def bytes_sent(self, replicas):
        """Bytes one replica sends per step to combine the gradients of
        `replicas` replicas under `tf.distribute` (ring algorithms): the
        sign optimizer's variables as its aggregation sends them (each
        variable's votes packed into words, or float32), the adaptive ones
        as Keras's float32 all-reduce."""
        from keras_signadam.backend import packing

        if not self.built:
            raise ValueError("`bytes_sent` needs a built optimizer.")
        vote = getattr(self.sign_optimizer, "aggregation", "sum") == (
            "majority_vote") and replicas > 1
        total = 0.0
        for variable in self._trainable_variables:
            size = 1
            for dim in variable.shape:
                size *= dim
            sign = not self._adaptive(variable)
            collective = (packing.collective_for(replicas) if sign and vote
                          else "float32_all_reduce")
            total += packing.ring_bytes_sent(collective, size, replicas)
        return total

    # ---------------------------------------- the sign optimizer's figures
    @property
    def sparsity(self):
        """The sign optimizer's `sparsity` (over its variables)."""
        return getattr(self.sign_optimizer, "sparsity", None)

    @property
    def nonfinite_count(self):
        return getattr(self.sign_optimizer, "nonfinite_count", None)

    def get_config(self):
        serialize = keras.saving.serialize_keras_object
        return {
            "name": self.name,
            "sign_optimizer": serialize(self.sign_optimizer),
            "adaptive_optimizer": serialize(self.adaptive_optimizer),
            "adaptive": list(self.adaptive),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for argument in ("sign_optimizer", "adaptive_optimizer"):
            if config.get(argument) is not None:
                config[argument] = keras.saving.deserialize_keras_object(
                    config[argument], custom_objects=custom_objects)
        return cls(**config)


def _layer_of(path):
    """The path of the layer that holds the variable at `path`."""
    return path.rsplit("/", 1)[0] if "/" in path else ""


def check_selectors(adaptive):
    """`adaptive` as a tuple of selectors, each a name or a regular
    expression that compiles."""
    selectors = (adaptive,) if isinstance(adaptive, str) else adaptive
    try:
        selectors = tuple(selectors)
    except TypeError:
        selectors = None
    if selectors is None or not all(isinstance(s, str) for s in selectors):
        raise ValueError(
            "Argument `adaptive` must be a string or a list of strings "
            f"('{OUTPUT}', '{VECTORS}', or regular expressions of variable "
            f"paths). Received: adaptive={adaptive!r}")
    for selector in selectors:
        try:
            re.compile(selector)
        except re.error as error:
            raise ValueError(
                f"Argument `adaptive` holds {selector!r}, which is neither "
                f"'{OUTPUT}' nor '{VECTORS}' nor a regular expression "
                f"({error}). Received: adaptive={adaptive!r}") from None
    return selectors
