"""The machine a benchmark ran on, and the report it writes."""

import os
import platform


def describe():
    import keras
    import numpy as np
    import tensorflow as tf

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
    gpus = tf.config.list_physical_devices("GPU")
    return (
        f"{cpu}, {os.cpu_count()} logical cores{memory}; "
        f"{len(gpus)} GPU(s); Python {platform.python_version()}, "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, "
        f"NumPy {np.__version__}, backend {keras.backend.backend()}"
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
