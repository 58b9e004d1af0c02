"""What the optimizers made of other optimizers (`Hybrid`, `LocalSteps`)
share: their argument checks, building on the first `apply`, and the
finite gradients they hand to Keras's optimizers."""

import keras

from keras_signadam.optimizers import reductions


def refuse_keras_arguments(name, kwargs, where):
    """Keras's own arguments (`weight_decay`, `clipnorm`, ...) belong to
    the inner optimizers: `where` says which."""
    for argument in kwargs:
        raise ValueError(
            f"`{name}` does not take `{argument}`: set it on {where}. "
            f"Received: {argument}={kwargs[argument]!r}")


def check_optimizer(argument, value):
    """`value`, which must be None or a Keras optimizer."""
    if value is not None and not isinstance(value,
                                            keras.optimizers.Optimizer):
        raise ValueError(f"Argument `{argument}` must be a Keras optimizer. "
                         f"Received: {argument}={value!r}")
    return value


def built_for(optimizer, trainable_variables):
    """The variables `apply` steps (the built ones by default), building
    `optimizer` for them on its first call, as Keras's `apply` does."""
    if trainable_variables is None:
        trainable_variables = optimizer._trainable_variables
    trainable_variables = list(trainable_variables)
    if not optimizer.built:
        with keras.name_scope(optimizer.name, caller=optimizer):
            optimizer.build(trainable_variables)
        optimizer.built = True
    return trainable_variables


def finite(g):
    """`g` with its non-finite components zeroed (integers as they are)."""
    if isinstance(g, keras.Variable) or not hasattr(g, "dtype"):
        g = keras.ops.convert_to_tensor(g)
    if "int" in str(g.dtype):
        return g
    return reductions.finite_part(g)
