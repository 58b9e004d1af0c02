"""The optimizers the quality benchmark compares, and its learning rates.

Every optimizer is swept over the same grid relative to its own default
learning rate (Keras's default for Keras optimizers): 0.3x, 1x, 3x, 10x and
30x, two decades. For most of them the default is 1e-3, so the grid is
3e-4 .. 3e-2; SGD with momentum (default 1e-2) gets 3e-3 .. 3e-1 and
ScheduleFreeAdamW (2.5e-3) 7.5e-4 .. 7.5e-2. (A first run over 0.1x .. 10x
chose 10x for most optimizers and never 0.1x: the grid moved up.)

`CANDIDATES` are the SignAdamPP settings a recommendation is chosen from,
leave-one-task-out (`summary.leave_one_task_out`).

The names "SignAdamPP ..." and "SignAdam" are the rules these classes had
up to 0.5 (`second_moment=True`, `bias_correction=True`), under the names
the committed runs gave them; the paper's rules, the defaults since 0.6,
go by the paper's names ("signADAM++", "signADAM", `PAPER` below).
"""

import keras

import keras_signadam as ks
from benchmarks.quality import experimental

FACTORS = (0.3, 1.0, 3.0, 10.0, 30.0)
QUICK_FACTORS = (0.3, 1.0, 3.0)


def _pp(lr, **kwargs):
    """SignAdamPP with the bias-corrected second moment of 0.5."""
    return ks.SignAdamPP(lr, second_moment=True, **kwargs)


# name -> (default learning rate, factory(learning_rate or schedule)).
OPTIMIZERS = {
    "SignAdamPP": (1e-3, lambda lr: _pp(lr)),
    # The recommended setting (see the README's "Does it help?"): chosen
    # from the variants below, where it was the best or level on every
    # task (`benchmarks/results/variants/quality.md`).
    "SignAdamPP recipe": (1e-3, lambda lr: _pp(
        lr, threshold=0.25, threshold_mode="relative", confidence="soft")),
    "SignAdam": (1e-3, lambda lr: ks.SignAdam(lr, bias_correction=True)),
    "Signum": (1e-3, lambda lr: ks.Signum(lr)),
    "NovoGrad": (1e-3, lambda lr: ks.NovoGrad(lr)),
    "Adam": (1e-3, lambda lr: keras.optimizers.Adam(lr)),
    "AdamW": (1e-3, lambda lr: keras.optimizers.AdamW(lr)),
    "Lion": (1e-3, lambda lr: keras.optimizers.Lion(lr)),
    "SGD momentum": (1e-2, lambda lr: keras.optimizers.SGD(
        lr, momentum=0.9)),
    # Keras's newer optimizers, with their defaults.
    "Muon": (1e-3, lambda lr: keras.optimizers.Muon(lr)),
    "ScheduleFreeAdamW": (2.5e-3, lambda lr:
                          keras.optimizers.ScheduleFreeAdamW(lr)),
    # Error feedback on one device (SPEC 3.6), on the defaults and on the
    # recipe.
    "SignAdamPP EF": (1e-3, lambda lr: _pp(
        lr, error_feedback=True)),
    "SignAdamPP recipe EF": (1e-3, lambda lr: _pp(
        lr, threshold=0.25, threshold_mode="relative", confidence="soft",
        error_feedback=True)),
    # The other form error feedback takes with adaptive methods: 1-bit
    # Adam's compressed momentum with a residual, on one device
    # (`experimental.py`; not part of the package).
    "Adam 1-bit momentum EF": (1e-3, lambda lr, total_steps:
                               experimental.CompressedMomentumAdam(
                                   lr, warmup_steps=max(
                                       1, int(WARM_UP_FRACTION
                                              * total_steps)))),
    "SignAdamPP beta_2=0.99": (1e-3, lambda lr: _pp(
        lr, beta_2=0.99)),
    # The relative hard threshold at half the first recipe's 0.5.
    "SignAdamPP relative 0.25": (1e-3, lambda lr: _pp(
        lr, threshold=0.25, threshold_mode="relative")),
}

# The SignAdamPP settings a recommendation is chosen from.
CANDIDATES = ("SignAdamPP", "SignAdamPP recipe", "SignAdamPP beta_2=0.99",
              "SignAdamPP relative 0.25", "SignAdamPP EF",
              "SignAdamPP recipe EF")

# Variants of SignAdamPP studied to find its recipe; run them with
# `--optimizers`. They are not part of the default comparison.
VARIANTS = {
    # The recipe's setting; the recipe before it was relative 0.5, hard.
    "SignAdamPP relative soft": (1e-3, lambda lr: _pp(
        lr, threshold=0.25, threshold_mode="relative", confidence="soft")),
    "SignAdamPP bfloat16 state": (1e-3, lambda lr: _pp(
        lr, state_dtype="bfloat16")),
    "SignAdamPP int8 state": (1e-3, lambda lr: _pp(
        lr, state_dtype="int8")),
    # Decoupled weight decay at AdamW's default rate.
    "SignAdamPP weight decay": (1e-3, lambda lr: _pp(
        lr, weight_decay=0.004)),
    # No filtering for the first epochs (see CALLBACKS).
    "SignAdamPP warm-up": (1e-3, lambda lr: _pp(lr)),
}
OPTIMIZERS.update(VARIANTS)

# The paper's rules (SPEC 3.3-3.4), the package's defaults since 0.6, and
# the paper's set-up (`benchmarks/paper`): regularization 5e-4, coupled
# into the gradient (L2) for every method but the two AW ones, which decay
# the weights by it, decoupled (Keras's form: theta -= lr * 5e-4 * theta).
PAPER_DECAY = 5e-4
PAPER = {
    "signADAM++": (1e-3, lambda lr: ks.SignAdamPP(lr)),
    "signADAM++ adaptive": (1e-3, lambda lr: ks.SignAdamPP(
        lr, threshold_mode="adaptive")),
    "signADAM": (1e-3, lambda lr: ks.SignAdam(lr)),
    "Adam L2": (1e-3, lambda lr: experimental.AdamL2(lr, l2=PAPER_DECAY)),
    "AdamW 5e-4": (1e-3, lambda lr: keras.optimizers.AdamW(
        lr, weight_decay=PAPER_DECAY)),
    "SIGN-SGD L2": (1e-3, lambda lr: ks.SignSGD(
        lr, coupled_weight_decay=PAPER_DECAY)),
    "Signum L2": (1e-3, lambda lr: ks.Signum(
        lr, coupled_weight_decay=PAPER_DECAY)),
    "signADAM L2": (1e-3, lambda lr: ks.SignAdam(
        lr, coupled_weight_decay=PAPER_DECAY)),
    "signADAM++ L2": (1e-3, lambda lr: ks.SignAdamPP(
        lr, coupled_weight_decay=PAPER_DECAY)),
    "signADAM++-AW": (1e-3, lambda lr: ks.SignAdamPP(
        lr, threshold_mode="adaptive", weight_decay=PAPER_DECAY)),
}
OPTIMIZERS.update(PAPER)


def _hybrid(sign, adaptive):
    return ks.Hybrid(sign, adaptive)


class _Scaled(keras.optimizers.schedules.LearningRateSchedule):
    """A schedule times a constant factor."""

    def __init__(self, schedule, factor):
        self.schedule, self.factor = schedule, factor

    def __call__(self, step):
        return self.factor * self.schedule(step)


def _times(lr, factor):
    """`lr`, a rate or a schedule, times `factor`."""
    if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule):
        return _Scaled(lr, factor)
    return lr * factor


# Zhao et al. (2025) give sign methods a rate 3 to 10 times smaller than
# Adam's; these hybrids run the sign part at a third of the swept rate
# and Adam at the swept rate (the factor fixed before any run).
SIGN_RATE = 1 / 3


class _WarmUp(keras.optimizers.schedules.LearningRateSchedule):
    """The rate `rate` (a number or a schedule), reached linearly over
    `steps` steps and then followed."""

    def __init__(self, rate, steps):
        self.rate, self.steps = rate, max(1, steps)

    def __call__(self, step):
        fraction = keras.ops.minimum(
            1.0, (keras.ops.cast(step, "float32") + 1.0) / self.steps)
        rate = (self.rate(step) if callable(self.rate) else self.rate)
        return rate * fraction

    def get_config(self):
        return {"rate": self.rate, "steps": self.steps}


# The rest of Zhao et al.'s (2025) recipe for sign methods, fixed before
# any run: a linear warm-up over the first 10% of the steps (Adam given
# the same, as its own setting) and betas near (0.95, 0.98), on top of
# the sign part's third of the rate. Their larger weight decay is left
# out: 3 to 10 times the baseline's, and Adam here has none.
ZHAO_WARM_UP = 0.1


def _warm(lr, total_steps):
    return _WarmUp(lr, int(ZHAO_WARM_UP * total_steps))


# A sign rule on most variables, Keras's Adam on the output layer and the
# vectors (`ks.Hybrid`'s default), both parts at the swept rate.
HYBRIDS = {
    "Hybrid signADAM++": (1e-3, lambda lr: _hybrid(
        ks.SignAdamPP(lr), keras.optimizers.Adam(lr))),
    "Hybrid signADAM++ adaptive": (1e-3, lambda lr: _hybrid(
        ks.SignAdamPP(lr, threshold_mode="adaptive"),
        keras.optimizers.Adam(lr))),
    "Hybrid Signum": (1e-3, lambda lr: _hybrid(
        ks.Signum(lr), keras.optimizers.Adam(lr))),
    "Hybrid SignAdamPP recipe": (1e-3, lambda lr: _hybrid(
        _pp(lr, threshold=0.25, threshold_mode="relative",
            confidence="soft"), keras.optimizers.Adam(lr))),
    "Hybrid SignAdamPP recipe (sign lr 0.33x)": (1e-3, lambda lr: _hybrid(
        _pp(_times(lr, SIGN_RATE), threshold=0.25,
            threshold_mode="relative", confidence="soft"),
        keras.optimizers.Adam(lr))),
    "Hybrid signADAM++ adaptive (sign lr 0.33x)": (1e-3, lambda lr: _hybrid(
        ks.SignAdamPP(_times(lr, SIGN_RATE), threshold_mode="adaptive"),
        keras.optimizers.Adam(lr))),
    "Hybrid Signum (sign lr 0.33x)": (1e-3, lambda lr: _hybrid(
        ks.Signum(_times(lr, SIGN_RATE)), keras.optimizers.Adam(lr))),
    # Error feedback on the sign part (SPEC 3.6 on one device): the
    # residual restores what the sign dropped, the Adam part keeps the
    # output layer and the vectors; both parts at the swept rate.
    "Hybrid SignAdamPP recipe EF": (1e-3, lambda lr: _hybrid(
        _pp(lr, threshold=0.25, threshold_mode="relative",
            confidence="soft", error_feedback=True),
        keras.optimizers.Adam(lr))),
    "Hybrid signADAM++ adaptive EF": (1e-3, lambda lr: _hybrid(
        ks.SignAdamPP(lr, threshold_mode="adaptive", error_feedback=True),
        keras.optimizers.Adam(lr))),
    # The paper's set-up (L2 5e-4 coupled into the gradient; decoupled
    # for AW).
    "Hybrid L2": (1e-3, lambda lr: _hybrid(
        ks.SignAdamPP(lr, coupled_weight_decay=PAPER_DECAY),
        experimental.AdamL2(lr, l2=PAPER_DECAY))),
    "Hybrid-AW": (1e-3, lambda lr: _hybrid(
        ks.SignAdamPP(lr, threshold_mode="adaptive",
                      weight_decay=PAPER_DECAY),
        keras.optimizers.AdamW(lr, weight_decay=PAPER_DECAY))),
}
OPTIMIZERS.update(HYBRIDS)

# Zhao et al.'s recipe on the hybrids, and Adam with the same warm-up
# (equal effort for the baseline).
ZHAO = {
    "Adam warm-up": (1e-3, lambda lr, total_steps: keras.optimizers.Adam(
        _warm(lr, total_steps))),
    "Hybrid SignAdamPP recipe (Zhao)": (1e-3, lambda lr, total_steps:
                                        _hybrid(_pp(
                                            _warm(_times(lr, SIGN_RATE),
                                                  total_steps),
                                            threshold=0.25,
                                            threshold_mode="relative",
                                            confidence="soft", beta_1=0.95,
                                            beta_2=0.98),
                                            keras.optimizers.Adam(
                                                _warm(lr, total_steps)))),
    "Hybrid Signum (Zhao)": (1e-3, lambda lr, total_steps: _hybrid(
        ks.Signum(_warm(_times(lr, SIGN_RATE), total_steps), momentum=0.95),
        keras.optimizers.Adam(_warm(lr, total_steps)))),
}
OPTIMIZERS.update(ZHAO)

# The settings of the sign family a recommendation is chosen from, with
# the paper's rules and the hybrids (`--candidates`).
ALL_CANDIDATES = ("SignAdamPP", "SignAdamPP recipe", "SignAdamPP beta_2=0.99",
                  "SignAdamPP relative 0.25", "SignAdamPP EF",
                  "SignAdamPP recipe EF", "signADAM++",
                  "signADAM++ adaptive", "signADAM", "Hybrid signADAM++",
                  "Hybrid signADAM++ adaptive", "Hybrid Signum",
                  "Hybrid SignAdamPP recipe",
                  "Hybrid SignAdamPP recipe (sign lr 0.33x)",
                  "Hybrid signADAM++ adaptive (sign lr 0.33x)",
                  "Hybrid Signum (sign lr 0.33x)",
                  "Hybrid SignAdamPP recipe EF",
                  "Hybrid signADAM++ adaptive EF",
                  "Hybrid SignAdamPP recipe (Zhao)", "Hybrid Signum (Zhao)")

WARM_UP_EPOCHS = 2
# 1-bit Adam's warm-up, as a fraction of the run (its authors use 15-25%).
WARM_UP_FRACTION = 0.2


def _warm_up(epoch, threshold):
    return 0.0 if epoch < WARM_UP_EPOCHS else 5e-4


# name -> factory of the callbacks the optimizer is trained with.
CALLBACKS = {
    "SignAdamPP warm-up": lambda: [
        ks.callbacks.ConfidenceScheduler(_warm_up)],
}
DEFAULT = [n for n in OPTIMIZERS if n not in VARIANTS and n not in PAPER
           and n not in HYBRIDS and n not in ZHAO]

OURS = ("SignAdamPP", "SignAdamPP recipe", "SignAdam", "Signum", "NovoGrad",
        "SignAdamPP EF", "SignAdamPP recipe EF", "SignAdamPP beta_2=0.99",
        "SignAdamPP relative 0.25", *VARIANTS,
        *(n for n in PAPER if not n.startswith("Adam")), *HYBRIDS,
        *(n for n in ZHAO if not n.startswith("Adam")))


def learning_rates(name, factors=FACTORS):
    default, _ = OPTIMIZERS[name]
    return [round(default * f, 12) for f in factors]


def make(name, learning_rate, schedule, total_steps):
    """The optimizer `name` at `learning_rate`, constant, with cosine
    decay to 0 over `total_steps`, or with the paper's step decay (x0.1 at
    50% and 83% of the steps)."""
    if schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps=total_steps)
    elif schedule == "step":
        # The paper's decay (its code: x0.1 at epochs 150 and 250 of 300).
        learning_rate = keras.optimizers.schedules.PiecewiseConstantDecay(
            [int(0.5 * total_steps), int(0.83 * total_steps)],
            [learning_rate, learning_rate * 0.1, learning_rate * 0.01])
    elif schedule != "constant":
        raise ValueError(f"Unknown schedule {schedule!r}")
    factory = OPTIMIZERS[name][1]
    if factory.__code__.co_argcount == 2:  # it needs the run's length
        return factory(learning_rate, total_steps)
    return factory(learning_rate)
