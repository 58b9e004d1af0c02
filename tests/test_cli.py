"""The comparison program end to end, as a new user meets it: real tfds
loading without a download, fast failures, quiet start-up, every bad-input
case, and results kept when it is interrupted."""

import json
import math
import os
import signal
import sys
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_signadam.comparison import cli
from keras_signadam.comparison import runner
from keras_signadam.comparison.datasets import tfds_images

NOISE = ("oneDNN", "cuInit", "absl", "cuda", "I0000", "E0000", "W0000")


class TinyImages(tfds.core.GeneratorBasedBuilder):
    """A real tfds builder that prepares its data without a download."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(8, 8, 1)),
                "label": tfds.features.ClassLabel(num_classes=3),
            }),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(30, 0),
                "test": self._generate_examples(12, 1)}

    def _generate_examples(self, n, seed):
        rng = np.random.default_rng(seed)
        for i in range(n):
            yield i, {"image": rng.integers(0, 256, (8, 8, 1), np.uint8),
                      "label": i % 3}


def unreachable(monkeypatch):
    """The download host refuses at once, as an offline machine's stack
    does, without a packet sent (tests open no socket outside a network
    namespace of their own). Returns the addresses asked for."""
    asked = []

    def refuse(address, timeout=None):
        asked.append((address, timeout))
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(tfds_images.socket, "create_connection", refuse)
    return asked


def error_lines(stderr):
    return [line for line in stderr.splitlines()
            if line.startswith("keras-signadam:")]


def table_rows(stdout, names):
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines)
                  if line.startswith("optimizer"))
    return {line.split()[0]: line.split() for line in lines[header + 2:]
            if line.split() and line.split()[0] in names}


def check_outputs(out, rows, epochs):
    data = json.loads((out / "results.json").read_text())
    for name, row in rows.items():
        r = data["results"][name]
        assert len(r["history"]["loss"]) == epochs
        assert float(row[5]) == pytest.approx(r["test_accuracy"], abs=1e-4)
    png = (out / "curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    return data


def test_default_dataset_end_to_end_and_quiet(tmp_path, run_python):
    out = tmp_path / "out"
    result = run_python(["-m", "keras_signadam", "compare", "--epochs", "2",
                         "--optimizers", "SignAdamPP,NovoGrad,Adam",
                         "--output", str(out)], cwd=tmp_path,
                        env={"TF_CPP_MIN_LOG_LEVEL": None})
    assert "SignAdamPP    epoch   2/2" in result.stdout
    # TensorFlow's start-up and runtime lines are not shown by default.
    assert not [line for line in result.stderr.splitlines()
                if any(word in line for word in NOISE)], result.stderr
    rows = table_rows(result.stdout, ("SignAdamPP", "NovoGrad", "Adam"))
    assert set(rows) == {"SignAdamPP", "NovoGrad", "Adam"}
    data = check_outputs(out, rows, 2)
    assert 0.3 < data["results"]["Adam"]["test_accuracy"] <= 1.0
    assert 0.0 <= data["results"]["SignAdamPP"]["sparsity"] <= 1.0
    assert data["results"]["Adam"]["sparsity"] is None
    assert data["metadata"]["model"] == "mlp"


@pytest.mark.parametrize("args", [["--version"], ["--help"],
                                  ["compare", "--help"], ["--seed", "-1"]])
def test_answers_without_importing_tensorflow(args, run_python):
    code = ("import runpy, sys; sys.argv = ['-m'] + sys.argv[1:]; "
            "sys.modules.pop('keras_signadam', None)\n"
            "try:\n    runpy.run_module('keras_signadam', run_name='__main__',"
            " alter_sys=True)\n"
            "except SystemExit as e:\n"
            "    print('imported tensorflow:', 'tensorflow' in sys.modules)\n"
            "    raise")
    result = run_python(["-c", code, *args], check=False)
    assert result.returncode in (0, 2), result.stderr
    assert "imported tensorflow: False" in result.stdout
    if args == ["--version"]:
        assert result.stdout.startswith("keras-signadam 0.")
    if args == ["--help"]:
        assert "compare (the default)" in result.stdout
    assert not [line for line in result.stderr.splitlines()
                if any(word in line for word in NOISE)]


def test_real_tfds_builder_prepared_offline(tmp_path, capsys,
                                            monkeypatch):
    """The real tfds import and prepare path (no mock), on a set that
    needs no download (the loader takes any set that is not prepared yet
    to need one, so the probe is answered here)."""
    monkeypatch.setattr(tfds_images, "_can_download", lambda: True)
    data_dir = tmp_path / "tfds"
    (x_train, y_train), (x_test, y_test) = (
        tfds_images.load_image_classification("tiny_images",
                                              data_dir=str(data_dir)))
    assert x_train.shape == (30, 8, 8, 1) and x_test.shape == (12, 8, 8, 1)
    assert x_train.dtype == np.float32 and 0.0 <= x_train.min() <= (
        x_train.max()) <= 1.0
    assert set(y_train) == {0, 1, 2} and y_test.dtype == np.int32
    out = tmp_path / "out"
    status = cli.main(["compare", "--dataset", "tiny_images", "--data-dir",
                       str(data_dir), "--epochs", "1", "--optimizers",
                       "SignAdamPP", "--output", str(out)])
    assert status == 0
    assert "tiny_images (tensorflow_datasets), 30 train / 12 test" in (
        capsys.readouterr().out)
    # A real catalogue builder's metadata, without a download.
    builder = tfds.builder("mnist", data_dir=str(tmp_path / "empty"))
    assert builder.info.supervised_keys == ("image", "label")
    assert not builder.is_prepared()


def test_unprepared_dataset_offline_fails_fast(tmp_path, capsys,
                                                monkeypatch):
    asked = unreachable(monkeypatch)
    out = tmp_path / "out"
    start = time.monotonic()
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["compare", "--dataset", "mnist", "--data-dir",
                  str(tmp_path / "tfds"), "--output", str(out)])
    assert time.monotonic() - start < 60  # not minutes of retries
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    lines = error_lines(err)
    assert len(lines) == 1, lines
    # Exactly that line: no warning from tfds about missing folders.
    assert [line for line in err.splitlines() if line.strip()] == lines, err
    assert "'mnist' is not prepared in" in lines[0]
    assert "download_and_prepare()" in lines[0]
    assert not out.exists()
    assert asked == [(tfds_images.DOWNLOAD_HOST, tfds_images.PROBE_SECONDS)]


def test_download_probe_answers_what_the_connection_does(monkeypatch):
    class Connection:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(tfds_images.socket, "create_connection",
                        lambda address, timeout=None: Connection())
    assert tfds_images._can_download() is True
    for error in (ConnectionRefusedError, TimeoutError, OSError):
        def fail(address, timeout=None, error=error):
            raise error("no route")

        monkeypatch.setattr(tfds_images.socket, "create_connection", fail)
        assert tfds_images._can_download() is False


def test_tfds_dataset_under_mock_data(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tfds_images, "_can_download", lambda: True)
    out = tmp_path / "out"
    with tfds.testing.mock_data(num_examples=48):
        status = cli.main(["compare", "--dataset", "fashion_mnist",
                           "--epochs", "1", "--batch-size", "16",
                           "--optimizers", "SignAdamPP,SGD-momentum",
                           "--learning-rates", "SignAdamPP=3e-3",
                           "--output", str(out)])
    assert status == 0
    stdout = capsys.readouterr().out
    assert "Dataset: fashion_mnist (tensorflow_datasets)" in stdout
    rows = table_rows(stdout, ("SignAdamPP", "SGD-momentum"))
    data = check_outputs(out, rows, 1)
    assert data["metadata"]["model"] == "cnn"
    assert data["results"]["SignAdamPP"]["learning_rate"] == 3e-3


def test_failed_download_says_so(tmp_path, capsys, monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("Failed to get url https://example/mnist.gz")

    monkeypatch.setattr(tfds_images, "_can_download", lambda: True)
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare",
                        offline)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["compare", "--dataset", "mnist", "--data-dir",
                  str(tmp_path / "tfds"), "--output", str(tmp_path / "o")])
    assert exit_info.value.code == 1
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1
    assert "could not download" in lines[0] and "mnist" in lines[0]


def bad_inputs(tmp_path):
    (tmp_path / "a_file").write_text("")
    (tmp_path / "taken" / "results.json").mkdir(parents=True)
    return [
        (["--optimizers", "Adamm"], "unknown optimizer(s) Adamm; choose"),
        (["--model", "vgg16"], "invalid choice: 'vgg16'"),
        (["--dataset", "no_such_dataset"], "unknown dataset"),
        (["--dataset", "glue"], "is not an image classification dataset"),
        (["--epochs", "0"], "must be > 0"),
        (["--batch-size", "-4"], "must be > 0"),
        (["--seed", "-1"], "--seed: must be in 0 .. 2**32 - 1"),
        (["--seed", "x"], "--seed: expected an integer"),
        (["--learning-rates", "Adam=fast"], "expected NAME=RATE"),
        (["--learning-rates", "Adam=inf"], "must be a finite number > 0"),
        (["--learning-rates", "Adam=1e300"], "must be a finite number > 0"),
        (["--learning-rates", "Adam=nan"], "must be a finite number > 0"),
        (["--learning-rates", "Adamm=1e-3"], "unknown optimizer(s) Adamm"),
        (["--output", "/proc/forbidden/out"], "cannot write to --output"),
        (["--output", str(tmp_path / "a_file")], "is not a directory"),
        (["--output", str(tmp_path / "a_file" / "x")], "is not a directory"),
        (["--output", str(tmp_path / "taken")], "it is a directory"),
    ]


@pytest.mark.parametrize("case", range(17))
def test_bad_input_exits_2_with_one_line(case, tmp_path, capsys):
    args, message = bad_inputs(tmp_path)[case]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["compare", *args])
    assert exit_info.value.code == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1, lines
    assert message in lines[0]


def test_interrupt_keeps_what_finished(tmp_path, start_python):
    out = tmp_path / "out"
    process = start_python(
        ["-m", "keras_signadam", "compare", "--epochs", "20", "--optimizers",
         "SignSGD,Adam,Lion", "--learning-rates", "SignSGD=1e-3",
         "--output", str(out)], cwd=tmp_path)
    deadline = time.monotonic() + 300
    while not (out / "results.json").exists():
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stdout[-2000:] + stderr[-3000:]
    assert "Traceback" not in stderr
    assert "Interrupted: kept the results of the 1 optimizer(s)" in stdout
    data = json.loads((out / "results.json").read_text())
    assert list(data["results"]) == ["SignSGD"]
    assert len(data["results"]["SignSGD"]["history"]["loss"]) == 20
    assert (out / "curves.png").exists()
    assert not [p for p in os.listdir(out) if p.startswith(".results-")]


def test_results_json_is_strict(tmp_path):
    path = tmp_path / "results.json"
    runner.write_json({"X": {"test_loss": math.nan,
                             "history": {"loss": [1.0, math.inf]}}},
                      str(path), seed=0)
    text = path.read_text()
    data = json.loads(text, parse_constant=lambda c: pytest.fail(c))
    assert data["results"]["X"]["test_loss"] is None
    assert data["results"]["X"]["history"]["loss"] == [1.0, None]


def test_console_script_help(run_python):
    script = os.path.join(os.path.dirname(sys.executable), "keras-signadam")
    assert os.path.exists(script), "package not installed with its script"
    import subprocess

    result = subprocess.run([script, "compare", "--help"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0
    assert "--dataset" in result.stdout and "--learning-rates" in (
        result.stdout)
    assert result.stderr == ""


def test_without_matplotlib_every_optimizer_trains_and_files_follow_umask(
        tmp_path, capsys, monkeypatch):
    """A base install has no matplotlib: the run still trains every
    optimizer, writes results.json with the mode new files get, and says
    once that the plot was skipped."""
    for name in [m for m in sys.modules if m.startswith("matplotlib")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "out"
    old = os.umask(0o027)
    try:
        status = cli.main(["compare", "--epochs", "1", "--optimizers",
                           "SignSGD,Adam", "--output", str(out)])
    finally:
        os.umask(old)
    assert status == 0
    stdout = capsys.readouterr().out
    rows = table_rows(stdout, ("SignSGD", "Adam"))
    assert set(rows) == {"SignSGD", "Adam"}
    assert stdout.count("matplotlib is not installed") == 1
    assert not (out / "curves.png").exists()
    assert os.stat(out / "results.json").st_mode & 0o777 == 0o640


def test_curves_of_the_package_optimizers_are_told_apart():
    from keras_signadam.comparison import choices
    from keras_signadam.comparison import plots

    styles = plots._styles(list(choices.OWN_OPTIMIZERS))
    looks = [(s["marker"], str(s["linestyle"]), s["color"])
             for s in styles.values()]
    for part in range(3):  # marker, line style and colour each differ
        assert len({look[part] for look in looks}) == len(looks)
