from setuptools import find_packages
from setuptools import setup

version = {}
with open("keras_signadam/version.py", encoding="utf-8") as f:
    exec(f.read(), version)

# The comparison program (`keras-signadam`): tfds image sets (tfds imports
# importlib_resources without declaring it on Python 3.9+), the bundled
# digits (scikit-learn ships them), and curves.png.
COMPARE = [
    "tensorflow>=2.16",
    "tensorflow-datasets",
    "importlib_resources",
    "scikit-learn",
    "matplotlib",
]

setup(
    name="keras-signadam",
    version=version["__version__"],
    description=(
        "Keras 3 optimizers driven by the sign of the gradient: signADAM++, "
        "SignAdam, Signum, SignSGD and NovoGrad, with callbacks that adapt "
        "the confidence threshold during training."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=find_packages(include=["keras_signadam", "keras_signadam.*"]),
    python_requires=">=3.10",
    # The optimizers need Keras and NumPy, and a backend for Keras to run
    # on, chosen by the user as for Keras itself (the `tensorflow` extra).
    # 3.10 is the oldest Keras they run on (keras_signadam/compat.py);
    # `make test-floor` tests it.
    install_requires=["keras>=3.10", "numpy"],
    extras_require={
        "tensorflow": ["tensorflow>=2.16"],
        "plots": ["matplotlib"],
        "compare": COMPARE,
        # jax and torch run the tests on the other Keras backends; optax is
        # an independent implementation the JAX tests compare with. torch
        # is pinned: the test machines hold the CPU build of this release,
        # while an open range would fetch a CUDA build (several GB).
        # pytest-xdist runs the suite on two processes; ruff is the linter
        # `make test` runs.
        "test": COMPARE + ["pytest", "pytest-xdist", "hypothesis", "h5py",
                           "jax[cpu]", "optax", "torch==2.13.0", "ruff"],
        # `make docs`: the documentation site with the API reference.
        "docs": ["mkdocs", "mkdocstrings[python]"],
    },
    entry_points={
        "console_scripts": [
            "keras-signadam=keras_signadam.comparison.cli:main",
        ],
    },
    classifiers=[
        "Development Status :: 4 - Beta",
        "Intended Audience :: Science/Research",
        "Intended Audience :: Developers",
        "License :: OSI Approved :: Apache Software License",
        "Operating System :: OS Independent",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "Topic :: Software Development :: Libraries :: Python Modules",
    ],
)
