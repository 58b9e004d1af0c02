"""How the bias-corrected step behaves when the signal is sparse.

On dense signs (s = +-1 every step) the bias-corrected second moment is
exactly 1, so SignAdam's step lr * |m_hat| / (sqrt(v_hat) + epsilon)
never exceeds lr. Once the confidence function zeroes a component for a
while, v decays (time constant 1 / (1 - beta_2) steps) while m forgets
faster. After a long gap, once the step count is well past
1 / (1 - beta_2) so that v's bias correction is near 1, the first nonzero
signal moves the weight by lr * (1 - beta_1) / sqrt(1 - beta_2), about
3.2 lr at the defaults, and a run of equal signs after it by up to
max_k (1 - beta_1**k) / sqrt(1 - beta_2**k), about 6.6 lr at k = 12,
because m refills ten times faster than v. A soft confidence's
fractional s has the same effect in a milder form.

This script measures how often that happens on the quality benchmark's
tasks: it trains each with bias-corrected SignAdam (the dense control),
SignAdamPP with `second_moment=True` (the default rule up to 0.5) and the
recipe of that time, at the learning rate 1e-3, reads m and v
after every step, and reports over all steps and components: the
fraction of zero signals, and among the components that moved, the
fraction whose step exceeded lr and 2 lr, the largest step, and the mean
step, in units of lr.

    python -m benchmarks.sparse_signal [--epochs F] [--output FILE]
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_signadam as ks  # noqa: E402
from benchmarks import machine  # noqa: E402
from benchmarks.quality.tasks import TASKS  # noqa: E402

# The rules with a bias-corrected second moment (the names the results of
# 0.5 gave them).
FACTORIES = {
    "SignAdam": lambda: ks.SignAdam(1e-3, bias_correction=True),
    "SignAdamPP": lambda: ks.SignAdamPP(1e-3, second_moment=True),
    "SignAdamPP recipe": lambda: ks.SignAdamPP(
        1e-3, second_moment=True, threshold=0.25, threshold_mode="relative",
        confidence="soft"),
}
NAMES = tuple(FACTORIES)

TABLE_HEADERS = [
    "| task | optimizer | zero signals | steps > lr | steps > 2 lr "
    "| largest step / lr | mean step / lr |",
]


class _StepSizes(keras.callbacks.Callback):
    """Accumulates |m_hat| / (sqrt(v_hat) + epsilon) after every step from
    the optimizer's own float32 moments."""

    def __init__(self, optimizer):
        super().__init__()
        self.optimizer = optimizer
        self.moved = self.above_1 = self.above_2 = self.zero = 0
        self.total = 0
        self.largest = self.step_sum = 0.0

    def on_train_batch_end(self, batch, logs=None):
        o = self.optimizer
        t = float(keras.ops.convert_to_numpy(o.iterations))
        beta_1 = float(keras.ops.convert_to_numpy(o.beta_1))
        components = 0
        rule = o.step_rule
        for m, v in zip(rule.momentums, rule.velocities):
            m = keras.ops.convert_to_numpy(m).astype("float64")
            v = keras.ops.convert_to_numpy(v).astype("float64")
            step = (np.abs(m) / (1.0 - beta_1 ** t)
                    / (np.sqrt(v / (1.0 - o.beta_2 ** t)) + o.epsilon))
            moved = step > 0
            self.moved += int(moved.sum())
            self.above_1 += int((step > 1.0 + 1e-6).sum())
            self.above_2 += int((step > 2.0).sum())
            self.largest = max(self.largest, float(step.max()))
            self.step_sum += float(step.sum())
            components += step.size
        self.total += components
        self.zero += int(keras.ops.convert_to_numpy(o.sparsity) * components)

    def row(self):
        moved = max(self.moved, 1)
        return (self.zero / max(self.total, 1), self.above_1 / moved,
                self.above_2 / moved, self.largest, self.step_sum / moved)


def measure(task, train, name, epochs, seed=0):
    keras.utils.set_random_seed(seed)
    model = task.build_model(train[0].shape[1:], int(train[1].max()) + 1)
    optimizer = FACTORIES[name]()
    optimizer.track_statistics = True
    model.compile(optimizer=optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True))
    recorder = _StepSizes(optimizer)
    model.fit(*train, batch_size=task.batch_size, epochs=epochs, verbose=0,
              callbacks=[recorder])
    return recorder.row()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=float, default=1.0,
                        help="multiplies every task's epochs")
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)

    report = machine.Report("Step sizes on a sparse signal")
    emit = report.emit
    emit("Each task's full epochs at the learning rate 1e-3, seed 0; step "
         "= |m_hat| / (sqrt(v_hat) + epsilon), the weight's move in units "
         "of the learning rate, over every step and component. Zero "
         "signals: fraction of components with zero confidence (SignAdam "
         "has none but exact zero gradients). Generated by "
         "`python -m benchmarks.sparse_signal`; not edited.")
    emit()
    emit(TABLE_HEADERS[0])
    emit("|---|---|---|---|---|---|---|")
    for task in TASKS.values():
        epochs = max(1, int(round(task.epochs * args.epochs)))
        train, _, _ = task.load(1.0)
        for name in NAMES:
            zero, above_1, above_2, largest, mean = measure(
                task, train, name, epochs)
            emit(f"| {task.name} | {name} | {zero:.3f} | {above_1:.4f} | "
                 f"{above_2:.4f} | {largest:.2f} | {mean:.3f} |")
    emit()
    report.save(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
