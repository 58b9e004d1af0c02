"""What each setting of the quality benchmark keeps and sends, measured on
each task's model: optimizer state bytes per parameter (off the variables
the optimizer builds), and the bytes one replica would send per step and
parameter at 4 replicas under `tf.distribute` (ring algorithms) if the
sign-updated variables were voted on (`aggregation="majority_vote"`) and
the rest summed in float32, as Keras's all-reduce does. The accuracy
beside them is measured on one device: the vote's own effect on accuracy
is measured by the slow-link benchmark, not here."""

import numpy as np

REPLICAS = 4


def _sign_updated(optimizer, variable):
    """Whether `variable` is updated by a rule that can vote."""
    assignment = getattr(optimizer, "assignment", None)
    if assignment is not None:  # a Hybrid
        return (assignment.get(variable.path) == "sign"
                and _votes(optimizer.sign_optimizer))
    return _votes(optimizer)


def _votes(optimizer):
    capabilities = getattr(optimizer, "capabilities", None)
    return bool(capabilities) and (
        "majority_vote" in capabilities.aggregations)


def measure(name, task, data):
    """(state bytes per parameter, wire bytes per parameter and step) of
    optimizer `name` on `task`'s model for `data` (its training split)."""
    import keras

    from benchmarks.quality import optimizers
    from keras_signadam.backend import packing

    x, y = data
    classes = int(np.max(y)) + 1 if np.issubdtype(y.dtype, np.integer) else 1
    model = task.build_model(x.shape[1:], classes)
    variables = model.trainable_variables
    optimizer = optimizers.make(name, 1e-3, "constant", 100)
    optimizer.build(variables)
    sizes = [int(np.prod(v.shape)) for v in variables]
    parameters = sum(sizes)
    state = sum(int(np.prod(v.shape)) * np.dtype(
        keras.backend.standardize_dtype(v.dtype)).itemsize
        for v in optimizer.variables)
    vote = packing.collective_for(REPLICAS)
    wire = sum(packing.ring_bytes_sent(
        vote if _sign_updated(optimizer, v) else "float32_all_reduce",
        size, REPLICAS) for v, size in zip(variables, sizes))
    return state / parameters, wire / parameters


def table(names, tasks):
    """{name: (state, wire) per parameter, each the mean over `tasks`,
    with the range: ((mean, low, high), (mean, low, high))}."""
    from benchmarks.quality.tasks import ALL_TASKS

    data = {task: ALL_TASKS[task].load(0.1)[0] for task in tasks}
    rows = {}
    for name in names:
        values = np.array([measure(name, ALL_TASKS[t], data[t])
                           for t in tasks])
        rows[name] = tuple((float(c.mean()), float(c.min()), float(c.max()))
                           for c in values.T)
    return rows
