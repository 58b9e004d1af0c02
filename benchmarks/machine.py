"""The machine a benchmark ran on, and the report it writes."""

import importlib
import os
import platform


def _accelerators(backend):
    """Names of the GPUs the backend computes on (none on CPU)."""
    if backend == "jax":
        import jax

        return [d.device_kind for d in jax.devices() if d.platform == "gpu"]
    if backend == "torch":
        import torch

        return [torch.cuda.get_device_name(i)
                for i in range(torch.cuda.device_count())]
    import tensorflow as tf

    return [tf.config.experimental.get_device_details(d).get(
        "device_name", "GPU") for d in tf.config.list_physical_devices("GPU")]


_FRAMEWORKS = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}


def _framework(backend):
    version = importlib.import_module(backend).__version__
    return f"{_FRAMEWORKS[backend]} {version}"


def describe():
    import keras
    import numpy as np

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            memory = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    backend = keras.backend.backend()
    gpus = _accelerators(backend)
    named = f" ({', '.join(sorted(set(gpus)))})" if gpus else ""
    return (
        f"{cpu}, {os.cpu_count()} logical cores{memory}; "
        f"{len(gpus)} GPU(s){named}; Python {platform.python_version()}, "
        f"{_framework(backend)}, Keras {keras.__version__}, "
        f"NumPy {np.__version__}, backend {backend}"
    )


class Report:
    """Markdown lines printed as they come and optionally saved: a title,
    then the machine line, then whatever the benchmark emits."""

    def __init__(self, title):
        self.lines = []
        self.emit(f"# {title}")
        self.emit()
        self.emit(f"Machine: {describe()}")
        self.emit()

    def emit(self, text=""):
        print(text, flush=True)
        self.lines.append(text)

    def save(self, path):
        if path:
            with open(path, "w", encoding="utf-8") as f:
                f.write("\n".join(self.lines) + "\n")
