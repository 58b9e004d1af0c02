"""The quality benchmark at a tiny budget: it runs from the command line,
chooses learning rates by validation accuracy, and reports what the runs
measured."""

import json
import re

import numpy as np
import pytest

from benchmarks.quality import optimizers
from tests.helpers import ROOT

TASKS = ("digits_mlp", "tabular_mlp")
NAMES = ("SignAdamPP", "Adam")
SEEDS = 2
# Two rates, not --quick's three, so the run also checks --factors.
FACTORS = (0.3, 3.0)


@pytest.fixture(scope="module")
def output(tmp_path_factory):
    from tests.helpers import run_python

    folder = tmp_path_factory.mktemp("quality")
    run_python(["-m", "benchmarks.quality", "--quick", "--tasks",
                ",".join(TASKS), "--optimizers", ",".join(NAMES),
                "--seeds", str(SEEDS), "--epochs", "0.1",
                "--factors", ",".join(map(str, FACTORS)), "--workers", "1",
                "--output-dir", str(folder)], cwd=ROOT)
    with open(folder / "quality_runs.jsonl", encoding="utf-8") as f:
        runs = [json.loads(line) for line in f]
    return folder, runs, (folder / "quality.md").read_text("utf-8")


def test_every_configuration_ran(output):
    _, runs, _ = output
    sweep = [r for r in runs if "study" not in r]
    expected = {(t, n, lr, "constant", s) for t in TASKS for n in NAMES
                for lr in optimizers.learning_rates(n, FACTORS)
                for s in range(SEEDS)}
    assert {(r["task"], r["optimizer"], r["learning_rate"], r["schedule"],
             r["seed"]) for r in sweep} == expected
    assert len(sweep) == len(expected)
    for r in runs:
        assert 0.0 <= r["test_accuracy"] <= 1.0
        assert len(r["val_accuracy"]) == r["epochs"] == 2
    studies = {(r["task"], r["study"]) for r in runs if "study" in r}
    assert studies == {(t, s) for t in TASKS
                       for s in ("fixed", "adaptive", "plateau")}


def test_report_shows_the_choice_made_on_validation(output):
    folder, runs, report = output
    assert "Machine:" in report
    assert "learning rates 0.3x, 3x of each optimizer's default" in report
    assert (folder / "quality_sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert (folder / "quality_threshold.png").read_bytes()[:4] == b"\x89PNG"
    sections = {part.split("\n", 1)[0]: part
                for part in report.split("\n## ")}
    for task in TASKS:
        for name in NAMES:
            cells = {}
            for r in runs:
                if ("study" not in r and r["task"] == task
                        and r["optimizer"] == name):
                    cells.setdefault(r["learning_rate"], []).append(r)
            # Highest mean final validation accuracy; ties to the lower lr.
            lr = max(cells, key=lambda k: (
                np.mean([r["val_accuracy"][-1] for r in cells[k]]), -k))
            test = [r["test_accuracy"] for r in cells[lr]]
            error = np.std(test, ddof=1) / np.sqrt(len(test))
            section = sections[task]
            line = next(line for line in section.splitlines()
                        if line.startswith(f"| {name} | constant | "))
            assert f"| {lr:g} | {np.mean(test):.4f} ± {error:.4f} |" in line
    assert "## Targets" in report


def test_resume_reuses_the_earlier_runs(output, tmp_path, capsys):
    from benchmarks.quality.__main__ import main

    _, runs, _ = output
    sweep = [r for r in runs if "study" not in r]
    # An interrupted run: one sweep run is missing. Its studies are kept:
    # they are reused where the rerun chooses the same learning rates.
    missing = sweep[-1]
    earlier = tmp_path / "earlier.jsonl"
    earlier.write_text("".join(json.dumps(r) + "\n" for r in runs
                               if r is not missing), "utf-8")
    key = ("task", "optimizer", "learning_rate", "seed")
    mine = [r for r in sweep[:-1] if (r["task"], r["optimizer"]) == (
        missing["task"], missing["optimizer"])]
    main(["--quick", "--tasks", missing["task"], "--optimizers",
          missing["optimizer"], "--seeds", str(SEEDS), "--epochs", "0.1",
          "--factors", ",".join(map(str, FACTORS)), "--workers", "1",
          "--resume", str(earlier), "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert f"1 sweep runs on 1 worker(s), {len(mine)} reused" in err
    studies = [r for r in runs if "study" in r and (
        r["task"], r["optimizer"]) == (missing["task"], missing["optimizer"])]
    assert studies
    ran, reused = map(int, re.search(
        r"(\d+) threshold-study runs on 1 worker\(s\), (\d+) reused",
        err).groups())
    assert ran + reused == len(studies)
    with open(tmp_path / "out" / "quality_runs.jsonl", encoding="utf-8") as f:
        again = [r for r in map(json.loads, f) if "study" not in r]
    assert again[:-1] == mine
    report = (tmp_path / "out" / "quality.md").read_text("utf-8")
    assert f"of which {len(mine) + reused} were reused" in report
    assert [again[-1][k] for k in key] == [missing[k] for k in key]


def refusal(argv, capsys):
    """The benchmark's argument parser (the command line's, run in this
    process: the fixture above runs the command itself)."""
    from benchmarks.quality import __main__ as command

    with pytest.raises(SystemExit) as exit_info:
        command.parse(argv)
    code = exit_info.value.code
    # A message as the exit code is what Python prints, exiting with 1.
    if isinstance(code, str):
        return 1, code
    return code, capsys.readouterr().err


def test_unknown_names_are_refused_by_argument(capsys):
    status, stderr = refusal(["--tasks", "mnist"], capsys)
    assert status != 0
    assert "--tasks" in stderr and "digits_mlp" in stderr


@pytest.mark.parametrize("factors", ["1,x", "1,0", ""])
def test_bad_factors_are_refused_by_argument(capsys, factors):
    status, stderr = refusal(["--factors", factors], capsys)
    assert status == 2
    assert "--factors" in stderr


def test_one_bit_momentum_form_matches_numpy():
    """The experimental 1-bit Adam form against NumPy over 12 steps: Adam
    for 5 steps, then v frozen and the momentum its scaled sign with the
    residual fed back."""
    import keras

    from benchmarks.quality import experimental

    rng = np.random.default_rng(0)
    shapes = [(7,), (5, 3)]
    thetas = [rng.normal(size=s).astype(np.float32) for s in shapes]
    grads = [[(rng.normal(size=s) * 10.0 ** rng.uniform(-3, -1, size=s))
              .astype(np.float32) for s in shapes] for _ in range(12)]
    lr, b1, b2, eps, warm = 1e-2, 0.9, 0.999, 1e-8, 5
    optimizer = experimental.CompressedMomentumAdam(lr, warmup_steps=warm)
    variables = [keras.Variable(t) for t in thetas]
    expected = [t.astype(np.float64) for t in thetas]
    state = [dict(m=np.zeros(s), v=np.zeros(s), e=np.zeros(s))
             for s in shapes]
    for t, step in enumerate(grads, start=1):
        optimizer.apply(step, variables)
        for i, g in enumerate(step):
            st = state[i]
            g = g.astype(np.float64)
            if t <= warm:
                st["v"] = b2 * st["v"] + (1 - b2) * g * g
                st["m"] = b1 * st["m"] + (1 - b1) * g
                direction = st["m"] / (1 - b1 ** t)
            else:
                p = b1 * st["m"] + (1 - b1) * g + st["e"]
                scale = np.abs(p).mean()
                st["m"] = scale * np.sign(p)
                st["e"] = p - st["m"]
                direction = st["m"]
            v_hat = st["v"] / (1 - b2 ** min(t, warm))
            expected[i] = expected[i] - lr * direction / (np.sqrt(v_hat)
                                                          + eps)
    for variable, e in zip(variables, expected):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), e,
                                   rtol=1e-5, atol=1e-6)
    # After the warm-up the momentum holds one magnitude per tensor.
    for m in optimizer._m:
        assert len(np.unique(np.abs(keras.ops.convert_to_numpy(m)))) == 1


def test_one_bit_momentum_form_takes_sparse_gradients():
    """An Embedding's gradient arrives as IndexedSlices: rows not looked
    up step as if their gradient were zero, as with dense gradients."""
    import keras
    import tensorflow as tf

    from benchmarks.quality import experimental

    table = keras.Variable(np.ones((6, 2), np.float32))
    sparse = tf.IndexedSlices(tf.constant([[1.0, -2.0]]), tf.constant([3]),
                              tf.constant([6, 2]))
    dense = keras.Variable(np.ones((6, 2), np.float32))
    for variable, gradient in ((table, sparse),
                               (dense, tf.convert_to_tensor(sparse))):
        optimizer = experimental.CompressedMomentumAdam(1e-2,
                                                        warmup_steps=1)
        for _ in range(3):
            optimizer.apply([gradient], [variable])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(table),
                                  keras.ops.convert_to_numpy(dense))
    assert not np.array_equal(keras.ops.convert_to_numpy(table)[3], [1, 1])


@pytest.mark.parametrize("schedule", ["constant", "cosine", "step"])
def test_every_optimizer_is_made_with_every_schedule(schedule):
    import keras

    for name in optimizers.OPTIMIZERS:
        optimizer = optimizers.make(name, 1e-3, schedule, total_steps=10)
        kernel = keras.Variable(np.ones((4, 3), "float32"))
        bias = keras.Variable(np.ones((3,), "float32"))
        optimizer.apply([keras.ops.ones((4, 3)), keras.ops.ones((3,))],
                        [kernel, bias])
        for variable in (kernel, bias):
            values = keras.ops.convert_to_numpy(variable)
            assert np.all(np.isfinite(values)), name
            assert np.all(values < 1.0), name


@pytest.mark.parametrize("schedule", ["constant", "cosine", "step"])
def test_slow_sign_hybrids_step_the_sign_part_at_a_third(schedule):
    import keras

    names = [n for n in optimizers.HYBRIDS if "sign lr 0.33x" in n]
    assert len(names) == 3
    for name in names:
        hybrid = optimizers.make(name, 3e-3, schedule, total_steps=10)
        for _ in range(7):  # past the step schedule's first decay
            hybrid.sign_optimizer.iterations.assign_add(1)
            hybrid.adaptive_optimizer.iterations.assign_add(1)
            sign, adaptive = (
                float(keras.ops.convert_to_numpy(o.learning_rate))
                for o in (hybrid.sign_optimizer, hybrid.adaptive_optimizer))
            assert sign == pytest.approx(adaptive / 3, rel=1e-6), name
