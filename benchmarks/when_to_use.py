"""The README's figure: what each optimizer costs against what it gives.

    python -m benchmarks.when_to_use [--runs FILE] [--output PNG]

Left: test accuracy minus Keras Adam's on each quality task, for the
validation-chosen learning rate and schedule of every optimizer (the runs
of `python -m benchmarks.quality` in `results/hybrid/`, mean over seeds,
error bars one standard error of the difference). Right: bytes of
optimizer state per parameter (from each optimizer's declared moments and
the state dtype; the hybrid's measured on the tasks' models) and bytes a
replica sends per parameter per step at 4 replicas (the exact float32
all-reduce, or the packed vote; `backend/packing.py`). Nothing is
trained: it reads the committed runs, so it takes seconds.
"""

import argparse
import json
import math
import os

from benchmarks.quality import summary

HERE = os.path.dirname(os.path.abspath(__file__))
# The run with the paper's rules, the hybrids and the settings of 0.5.
RUNS = os.path.join(HERE, "results", "hybrid", "quality_runs.jsonl")
OUTPUT = os.path.join(HERE, "results", "when_to_use.png")
SHOWN = ["signADAM++", "signADAM++ adaptive", "Hybrid signADAM++ adaptive",
         "Hybrid SignAdamPP recipe", "SignAdamPP recipe EF"]
# Measured on the quality tasks' models (`quality/costs.py`).
HYBRID = "Hybrid signADAM++ adaptive"
REPLICAS = 4
FLOOR_POINTS = -20.0   # lower edge of the accuracy axis


def accuracy_differences(records, baseline="Adam"):
    """{optimizer: [(task, difference, standard error)]}"""
    best = summary.best_per_optimizer(summary.sweep_cells(records))
    tasks = sorted({task for task, _ in best})
    rows = {}
    for name in SHOWN:
        for task in tasks:
            if (task, name) not in best or (task, baseline) not in best:
                continue
            ours, theirs = best[(task, name)][1], best[(task, baseline)][1]
            error = math.hypot(*(e if math.isfinite(e) else 0.0 for e in
                                 (ours.test_error, theirs.test_error)))
            rows.setdefault(name, []).append(
                (task, ours.test - theirs.test, error))
    return rows


BYTES = {"float32": 4, "bfloat16": 2, "int8": 1}


def state_bytes(cls, state_dtype="float32"):
    """Per parameter: the optimizer's declared per-parameter moments."""
    return len(cls.capabilities.moments) * BYTES[state_dtype]


def costs():
    """[(label, state bytes per parameter, wire bytes per parameter)]"""
    import keras_signadam as ks
    from benchmarks.quality import costs as measured
    from benchmarks.quality.tasks import TASKS
    from keras_signadam.backend import packing

    n = 1 << 20
    exact = packing.ring_bytes_sent("float32_all_reduce", n, REPLICAS) / n
    vote = packing.ring_bytes_sent(packing.collective_for(REPLICAS), n,
                                   REPLICAS) / n
    (hybrid_state, _, _), (hybrid_wire, _, _) = measured.table(
        [HYBRID], list(TASKS))[HYBRID]
    return [("Adam", 8, exact),
            ("SignAdamPP + vote", state_bytes(ks.SignAdamPP), vote),
            ("SignAdamPP int8 state + vote",
             state_bytes(ks.SignAdamPP, "int8"), vote),
            (f"{HYBRID} + vote (mean of the 7 models)", hybrid_state,
             hybrid_wire),
            ("SignAdamPP(second_moment=True) + error feedback",
             3 * BYTES["float32"], exact),
            ("NovoGrad", state_bytes(ks.NovoGrad), exact)]


def plot(differences, cost_rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(
        1, 2, figsize=(12, 4.6), gridspec_kw={"width_ratios": [3, 2]})
    tasks = sorted({t for rows in differences.values() for t, _, _ in rows})
    markers = "osD^v<>"
    for k, (name, rows) in enumerate(differences.items()):
        offsets = {t: i for i, t in enumerate(tasks)}
        xs = [offsets[t] + (k - len(differences) / 2) * 0.08
              for t, _, _ in rows]
        left.errorbar(xs, [100 * d for _, d, _ in rows],
                      yerr=[100 * e for _, _, e in rows],
                      fmt=markers[k % len(markers)], capsize=3, label=name)
    # One diverging optimizer should not flatten every other difference.
    floor = FLOOR_POINTS
    for k, (name, rows) in enumerate(differences.items()):
        for t, d, _ in rows:
            if 100 * d < floor:
                x = tasks.index(t) + (k - len(differences) / 2) * 0.08
                left.annotate(f"{name}: {100 * d:.0f}", (x, floor + 0.5),
                              fontsize=7, ha="center")
    low, high = left.get_ylim()
    left.set_ylim(max(low, floor), high)
    left.axhline(0.0, color="black", linewidth=1)
    left.set_xticks(range(len(tasks)), tasks, rotation=25, ha="right",
                    fontsize=8)
    left.set_ylabel("test accuracy - Adam's (points)")
    left.set_title("Accuracy against Adam (validation-chosen lr)")
    left.legend(fontsize=8)
    labels = [label for label, _, _ in cost_rows]
    ys = range(len(labels))
    right.barh([y + 0.2 for y in ys], [s for _, s, _ in cost_rows],
               height=0.4, label="state bytes / parameter")
    right.barh([y - 0.2 for y in ys], [w for _, _, w in cost_rows],
               height=0.4, label=f"bytes sent / parameter / step "
                                 f"({REPLICAS} replicas)")
    right.set_yticks(list(ys), labels, fontsize=8)
    right.set_title("What a step costs")
    right.legend(fontsize=8, loc="upper center", ncol=1,
                 bbox_to_anchor=(0.5, -0.08))
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default=RUNS)
    parser.add_argument("--output", default=OUTPUT)
    args = parser.parse_args(argv)
    with open(args.runs, encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    differences = accuracy_differences(records)
    plot(differences, costs(), args.output)
    for name, rows in differences.items():
        print(name, " ".join(f"{t} {100 * d:+.1f}" for t, d, _ in rows))
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
