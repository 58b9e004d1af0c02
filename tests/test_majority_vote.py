"""`aggregation="majority_vote"`: the packed codes read back digit by digit,
the vote and the updates over several steps at 2 and 4 replicas against
the NumPy references, identical replicas, the bytes the collectives move,
`fit` under MirroredStrategy and the arguments."""

import json
import os

import keras
import ml_dtypes
import numpy as np
import pytest
import tensorflow as tf

import keras_signadam as ks
from keras_signadam.backend.tensorflow import majority_vote
from tests import reference as ref
from tests.helpers import ROOT
from tests.helpers import start_python
from tests.helpers import tensors_written_besides
from tests.helpers import to_numpy

SCRIPT = os.path.join(ROOT, "tests", "scripts", "majority_vote.py")
# `model.fit`, save and resume under the vote run at this replica count
# (its integer all-reduce; the all-gather is checked step by step).
FIT_REPLICAS = 4
STEPS = 4
SHAPES = [(37, 29), (301,)]
LR = 1e-2


@pytest.mark.parametrize("radix", [3, 5, 9, 17, 513])
def test_packing_round_trips_in_the_fewest_words(radix):
    rng = np.random.default_rng(radix)
    codes = rng.integers(0, radix, size=1001)
    # The largest code everywhere in one word: its sum is the largest.
    codes[:40] = radix - 1
    words = majority_vote.pack(tf.constant(codes, tf.int32), radix)
    assert words.dtype == tf.int32
    np.testing.assert_array_equal(
        majority_vote.unpack(words, radix, len(codes)).numpy(), codes)
    # Fields of the narrowest power of two (from 2) bits that hold
    # radix - 1, as many as fit in 32 bits, and no more words.
    bits = {3: 2, 5: 4, 9: 4, 17: 8, 513: 16}[radix]
    per_word = 32 // bits
    assert words.shape[0] == -(-len(codes) // per_word)
    # Field j of word w (read as an unsigned number, bit field by bit
    # field, lowest first) holds code j W + w, W the number of words.
    count = words.shape[0]
    padded = list(codes) + [0] * (count * per_word - len(codes))
    for w, value in enumerate(words.numpy().view(np.uint32)):
        value = int(value)
        fields = [(value >> (bits * j)) & ((1 << bits) - 1)
                  for j in range(per_word)]
        assert value >> (bits * per_word) == 0
        assert fields == padded[w::count]


@pytest.mark.parametrize("replicas", [2, 4, 8])
def test_summed_words_hold_the_summed_codes(replicas):
    """An int32 sum of packed words (wrapping past 2**31 as the integer
    all-reduce does) unpacks to the per-component sums."""
    rng = np.random.default_rng(replicas)
    radix = 2 * replicas + 1
    codes = rng.integers(0, 3, size=(replicas, 500))
    codes[:, :30] = 2
    words = [majority_vote.pack(tf.constant(c, tf.int32), radix)
             for c in codes]
    total = tf.math.add_n(words)
    np.testing.assert_array_equal(
        majority_vote.unpack(total, radix, 500).numpy(), codes.sum(axis=0))


def test_collective_sends_fewer_bytes_per_replica():
    n = 1 << 20
    for replicas in (2, 3, 4, 8, 64):
        chosen = majority_vote.collective_for(replicas)
        sent = majority_vote.ring_bytes_sent(chosen, n, replicas)
        for other in ("all_gather", "all_reduce"):
            assert sent <= majority_vote.ring_bytes_sent(other, n, replicas)
    assert majority_vote.collective_for(2) == "all_gather"
    assert majority_vote.collective_for(8) == "all_reduce"


@pytest.mark.parametrize("cls,arguments,replicas", [
    (ks.SignSGD, {"error_feedback": True}, 2),
    (ks.Signum, {"error_feedback": True}, 4),
    (ks.SignAdam, {"error_feedback": True}, 2),
    (ks.SignAdamPP, {"error_feedback": True}, 4),
    (ks.SignAdamPP, {"error_feedback": True, "state_dtype": "bfloat16"}, 2),
    # Thresholds set from per-tensor statistics of the estimate R g_r.
    (ks.SignAdamPP, {"error_feedback": True, "threshold_mode": "adaptive"},
     2),
    (ks.SignAdamPP, {"threshold_mode": "adaptive"}, 4),
    (ks.SignSGD, {"threshold_mode": "relative"}, 2)])
def test_compiled_encode_writes_only_the_residual(cls, arguments, replicas):
    """A replica's encode function reads its error-feedback residual to
    form the words and writes the residual's new value: ordered after the
    words, in place. Without that order XLA copied the residual of every
    variable at every step. The estimate R g_r is formed where it is read,
    in the threshold statistics' branch too: given to the branch, it was
    written out."""
    # Whole rows of `reductions.ROW`, as in the update's own test.
    shapes = [(64, 48), (2, 1024)]
    variables = [keras.Variable(np.ones(s, "float32")) for s in shapes]
    grads = [tf.constant(np.full(s, 1e-2, "float32")) for s in shapes]
    optimizer = cls(aggregation="majority_vote", **arguments)
    optimizer.build(variables)
    program = majority_vote.VoteProgram(
        optimizer, variables, replicas,
        majority_vote.collective_for(replicas))
    hlo = program.encode.experimental_get_compiler_ir(grads)(
        stage="optimized_hlo")
    written = tensors_written_besides(hlo, shapes)
    assert not written, written
    if arguments.get("error_feedback"):
        residuals = optimizer.moment_values("residual")
        assert [tuple(r.shape) for r in residuals] == shapes


# ------------------------------------------------------ replicas, steps
CASES = {
    # name: (reference of the update on the vote, arguments of the
    # reference's local signal)
    "SignSGD": (lambda: ref.SignSGD(LR),
                dict(threshold=5e-4, coupled_weight_decay=0.1)),
    "Signum": (lambda: ref.Signum(LR, weight_decay=0.01), {}),
    "SignAdamPP": (lambda: ref.SignAdamPP(LR), dict(threshold=5e-4)),
    "SignAdamPP relative": (lambda: ref.SignAdamPP(LR),
                            dict(threshold=0.5, mode="relative")),
    # Each replica keeps the running deviation of its own share.
    "SignAdamPP adaptive": (lambda: ref.SignAdamPP(LR),
                            dict(threshold=0.999, mode="adaptive")),
    "SignAdamPP second moment": (lambda: ref.AdamOfSigns(LR),
                                 dict(threshold=5e-4)),
    "Signum coupled": (lambda: ref.Signum(LR),
                       dict(coupled_weight_decay=0.1)),
    # The matrix votes; the vector's float32 sum goes to Keras's Adam.
    "Hybrid": (lambda: ref.SignAdamPP(LR), dict(threshold=5e-4)),
    # Each replica feeds back its own residual (SPEC 3.6).
    "SignAdamPP EF": (lambda: ref.SignAdamPP(LR), dict(threshold=5e-4)),
    "Signum EF": (lambda: ref.Signum(LR), {}),
}
FEEDBACK = ("SignAdamPP EF", "Signum EF")
DTYPES = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16}


def case_list():
    # Every optimizer's signal with the collective its replica count
    # chooses, and SignAdamPP's with the other one too: the packing and
    # the collective never look at which optimizer made the codes.
    cases = []
    for replicas in (2, 4):
        chosen = majority_vote.collective_for(replicas)
        for collective in ("all_gather", "all_reduce"):
            for name in CASES:
                if name not in FEEDBACK and (
                        collective == chosen or name == "SignAdamPP"):
                    cases.append((name, replicas, collective, "float32"))
        for name in FEEDBACK:
            cases.append((name, replicas, chosen, "float32"))
        cases.append(("SignAdamPP", replicas, "all_gather", "bfloat16"))
        cases.append(("SignAdamPP sum", replicas, "sum", "float32"))
    return cases


def problem(replicas, seed):
    """Initial values and every replica's gradient share at every step:
    a common part plus per-replica noise, so votes are split; exact zeros
    shared by all replicas (ties) and a NaN on one replica."""
    rng = np.random.default_rng(seed)
    thetas, grads = [], []
    for shape in SHAPES:
        thetas.append(rng.normal(size=shape).astype(np.float32))
        common = rng.normal(size=(STEPS, 1) + shape) * 1e-3
        noise = rng.normal(size=(STEPS, replicas) + shape) * 2e-3
        g = (common + noise) / replicas
        g[:, :, rng.uniform(size=shape) < 0.05] = 0.0
        grads.append(g.astype(np.float32))
    grads[1][1, 0, 3] = np.nan
    return thetas, grads


@pytest.fixture(scope="module")
def voted_steps(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vote")
    arrays = {}
    for index, (name, replicas, collective, dtype) in enumerate(
            case_list()):
        key = f"{name}-{replicas}-{collective}-{dtype}"
        thetas, grads = problem(replicas, index)
        arrays.update({f"{key}/replicas": replicas, f"{key}/optimizer": name,
                       f"{key}/collective": collective,
                       f"{key}/dtype": dtype, f"{key}/steps": STEPS})
        for i, (theta, g) in enumerate(zip(thetas, grads)):
            arrays[f"{key}/theta{i}"] = theta
            arrays[f"{key}/grad{i}"] = g
    np.savez(folder / "input.npz", **arrays)
    # One process per replica count runs the steps, the one at 4 replicas
    # also the fits; the two run side by side.
    children = {
        replicas: start_python([SCRIPT, "steps", str(replicas),
                                str(folder / "input.npz"),
                                str(folder / f"output{replicas}.npz")]
                               + ([str(folder / "fit.json")]
                                  if replicas == FIT_REPLICAS else []))
        for replicas in (2, 4)}
    out = {}
    for replicas, child in children.items():
        _, stderr = child.communicate(timeout=900)
        assert child.returncode == 0, stderr[-4000:]
        out.update(np.load(folder / f"output{replicas}.npz"))
    out["fit"] = json.loads((folder / "fit.json").read_text())
    return arrays, out


def expected_thetas(name, replicas, dtype, thetas, grads):
    """Per step, the reference parameters after updating on the vote, and
    at the end every replica's residuals (error feedback) and the
    fraction of zero votes of the last step."""
    make_reference, signal_arguments = CASES[name]
    np_dtype = DTYPES[dtype]
    references = [make_reference() for _ in thetas]
    # One signal per replica and variable; with feedback, each keeps its
    # own residual.
    signals = [[ref.ReplicaSignal(replicas, **signal_arguments)
                for _ in thetas] for _ in range(replicas)]
    if name in FEEDBACK:
        signals = [[ref.ErrorFeedback(s) for s in row] for row in signals]
    if name == "Hybrid":
        references[1] = ref.Adam(LR)
    thetas = [ref.store(theta, np_dtype) for theta in thetas]
    steps = []
    for t in range(STEPS):
        new, zero_votes = [], 0
        for i, (theta, reference) in enumerate(zip(thetas, references)):
            # The replicas receive their shares in the variables' dtype
            # (a NaN stays NaN).
            if isinstance(reference, ref.Adam):
                # Each replica's share, non-finite components zeroed,
                # summed in float32.
                total = np.sum([ref.clean(ref.store(s, np_dtype))
                                for s in grads[i][t]], axis=0,
                               dtype=np.float32)
                new.append(ref.store(reference.step(theta, total, t + 1),
                                     np_dtype))
                continue
            shares = [signals[r][i].signal(theta, ref.store(s, np_dtype))
                      for r, s in enumerate(grads[i][t])]
            vote = ref.majority_vote(shares)
            zero_votes += np.sum(vote == 0)
            new.append(ref.store(reference.step(theta, vote, t + 1),
                                 np_dtype))
        thetas = new
        steps.append(thetas)
    residuals = [[getattr(s, "e", None) for s in row] for row in signals]
    deviations = [[getattr(s, "inner", s).conf.a for s in row]
                  for row in signals]
    return (steps, residuals, deviations,
            zero_votes / sum(np.prod(s) for s in SHAPES))


@pytest.mark.parametrize("case", [c for c in case_list() if c[2] != "sum"],
                         ids=lambda c: "-".join(map(str, c)))
def test_vote_and_update_match_numpy_reference(voted_steps, case):
    arrays, out = voted_steps
    name, replicas, collective, dtype = case
    key = f"{name}-{replicas}-{collective}-{dtype}"
    thetas = [arrays[f"{key}/theta{i}"] for i in range(2)]
    grads = [arrays[f"{key}/grad{i}"] for i in range(2)]
    expected, residuals, deviations, zero_votes = expected_thetas(
        name, replicas, dtype, thetas, grads)
    tolerance = (dict(rtol=1e-6, atol=1e-6) if dtype == "float32"
                 else dict(rtol=1e-2, atol=1e-3))
    for t in range(STEPS):
        for i in range(2):
            copies = out[f"{key}/theta{i}/step{t}"].astype(np.float32)
            assert copies.shape[0] == replicas
            # Every replica holds the same bits.
            for copy in copies[1:]:
                np.testing.assert_array_equal(copy, copies[0])
            # A wrong vote moves a component by about LR = 1e-2.
            np.testing.assert_allclose(copies[0], expected[t][i],
                                       err_msg=f"{key} step {t} var {i}",
                                       **tolerance)
    paths = list(out[f"{key}/optimizer_paths"])
    for index, path in enumerate(paths):
        copies = out[f"{key}/optimizer{index}"]
        if path.endswith("_residual"):
            # Each replica's own residual, as the reference's.
            i = [p for p in paths if p.endswith("_residual")].index(path)
            for r in range(replicas):
                # The scale a sums the tensor in float32: its rounding,
                # times a, is the tolerance.
                scale = np.abs(residuals[r][i]).max()
                np.testing.assert_allclose(copies[r], residuals[r][i],
                                           rtol=1e-5, atol=1e-5 * scale,
                                           err_msg=path)
            assert np.any(copies[0] != copies[1])
            continue
        if path.endswith("_gradient_std"):
            # Each replica's own running deviation of its share.
            i = [p for p in paths if p.endswith("_gradient_std")].index(path)
            for r in range(replicas):
                np.testing.assert_allclose(copies[r], deviations[r][i],
                                           rtol=1e-5, err_msg=path)
            assert copies[0] != copies[1]
            continue
        for copy in copies[1:]:
            np.testing.assert_array_equal(copy, copies[0], err_msg=path)
    assert any(p.endswith("_residual") for p in paths) == (
        name in FEEDBACK)
    assert any(p.endswith("_gradient_std") for p in paths) == (
        "adaptive" in name)
    if f"{key}/sparsity" in out:
        # Statistics count the zero votes of the last step.
        assert float(out[f"{key}/sparsity"]) == pytest.approx(zero_votes)
    calls = json.loads(str(out[f"{key}/calls"]))
    if name == "Hybrid":
        # The vector's float32 all-reduce beside the matrix's votes, whose
        # words hold its components only.
        floats = [c for c in calls if c["dtypes"] == ["float32"]]
        assert {c["collective"] for c in floats} == {"all_reduce"}
        assert all(c["sent"] == 4 * 301 for c in floats)
        calls = [c for c in calls if c not in floats]
        per_word = 32 // (2 if collective == "all_gather" else 4)
        assert all(c["sent"] == 4 * -(-37 * 29 // per_word) for c in calls)
    assert {c["collective"] for c in calls} == {collective}
    assert all(c["dtypes"] == ["int32"] for c in calls)


@pytest.mark.parametrize("replicas,fewer", [(2, 15.0), (4, 7.5)])
def test_collectives_move_8_to_16x_fewer_bytes(voted_steps, replicas,
                                               fewer):
    """Bytes read off the tensors each collective call was given and
    returned, per replica, against the float32 all-reduce Keras makes:
    16x at 2 replicas (2-bit fields) and 8x at 4 (4-bit fields), less the
    padding of each variable's last word."""
    _, out = voted_steps

    def per_call(collective):
        name = "SignAdamPP sum" if collective == "sum" else "SignAdamPP"
        calls = json.loads(str(
            out[f"{name}-{replicas}-{collective}-float32/calls"]))
        assert len(calls) % replicas == 0
        first = calls[0]
        assert all(c == first for c in calls)
        return first

    components = sum(np.prod(s) for s in SHAPES)
    exact = per_call("sum")
    assert exact["dtypes"] == ["float32"]
    assert exact["sent"] == 4 * components
    ring = {
        "sum": 2 * (replicas - 1) / replicas * exact["sent"],
        "all_reduce": 2 * (replicas - 1) / replicas
        * per_call("all_reduce")["sent"],
        "all_gather": (replicas - 1) * per_call("all_gather")["sent"],
    }
    gathered = per_call("all_gather")
    assert gathered["received"] == replicas * gathered["sent"]
    chosen = majority_vote.collective_for(replicas)
    assert ring[chosen] == min(ring["all_reduce"], ring["all_gather"])
    # Fields of 2 bits (codes 0..2) and 4 (sums 0..2R at R <= 7).
    bits = {"all_gather": 2, "all_reduce": 4}
    for collective, field in bits.items():
        per_word = 32 // field
        assert per_call(collective)["sent"] == 4 * sum(
            -(-int(np.prod(s)) // per_word) for s in SHAPES)
    assert ring["sum"] / ring[chosen] >= fewer


def test_fit_keeps_replicas_identical_and_resumes(voted_steps):
    rows = voted_steps[1]["fit"]
    assert [r["optimizer"] for r in rows] == ["SignAdamPP", "SignAdamPP EF",
                                              "Hybrid"]
    for row in rows:
        assert row["copies"] == row["replicas"] == FIT_REPLICAS
        assert row["spread"] == 0.0, row
        assert row["loss"][-1] < row["loss"][0], row
        assert row["aggregation"] == "majority_vote"
        if row["optimizer"].endswith("EF"):
            # Per-replica residuals are saved as their mean, which every
            # replica gets back; the rest then trains on as one.
            assert row["residuals"], row
            for residual in row["residuals"]:
                assert residual["replicas_differ"], row
                assert residual["loaded_copies"] == row["replicas"]
                assert residual["loaded_minus_mean"] <= (
                    1e-6 * residual["scale"]), row
            continue
        # `model.save` after one epoch, `load_model` under a fresh
        # strategy, one more epoch: the same weights and state.
        assert row["resume_difference"] == 0.0, row


# ------------------------------------------------------------ arguments
def test_bad_aggregation_is_refused_by_name():
    with pytest.raises(ValueError, match="aggregation"):
        ks.SignAdamPP(aggregation="vote")
    with pytest.raises(ValueError, match="aggregation"):
        ks.NovoGrad(aggregation="majority_vote")
    with pytest.raises(ValueError, match="confidence='hard'"):
        ks.SignAdamPP(confidence="soft", aggregation="majority_vote")
    with pytest.raises(ValueError, match="confidence='hard'"):
        ks.SignSGD(confidence="soft", aggregation="majority_vote")


@pytest.mark.parametrize("cls", [ks.SignSGD, ks.Signum, ks.SignAdam,
                                 ks.SignAdamPP])
def test_aggregation_is_configured_and_has_no_effect_on_one_device(cls):
    optimizer = cls(aggregation="majority_vote")
    config = optimizer.get_config()
    assert config["aggregation"] == "majority_vote"
    assert cls.from_config(config).aggregation == "majority_vote"
    rng = np.random.default_rng(0)
    theta = rng.normal(size=(6, 5)).astype(np.float32)
    grads = [rng.normal(size=(6, 5)).astype(np.float32) * 1e-3
             for _ in range(3)]
    results = []
    for aggregation in ("sum", "majority_vote"):
        variable = keras.Variable(theta)
        optimizer = cls(1e-2, aggregation=aggregation)
        for g in grads:
            optimizer.apply([g], [variable])
        results.append(to_numpy(variable))
    np.testing.assert_array_equal(results[0], results[1])
    assert np.abs(results[0] - theta).max() > 1e-3
