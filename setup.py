from setuptools import find_packages
from setuptools import setup

setup(
    name="keras-signadam",
    version="0.1.0",
    description=(
        "Keras 3 optimizers driven by the sign of the gradient: signADAM++, "
        "SignAdam, Signum, SignSGD and NovoGrad, with callbacks that adapt "
        "the confidence threshold during training."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["keras_signadam", "keras_signadam.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.5",
        "numpy",
        "tensorflow-datasets",
        # The embedded, download-free dataset of the main job and the tests:
        # scikit-learn ships the UCI handwritten digits inside its wheel.
        "scikit-learn",
    ],
    extras_require={
        "plots": ["matplotlib"],
        # jax and torch run the tests on the other Keras backends. torch is
        # pinned: the test machines hold the CPU build of this release,
        # while an open range would fetch a CUDA build (several GB).
        # pytest-xdist runs the suite on two processes, which keeps CI well
        # inside its budget (many tests wait on TensorFlow start-up in child
        # processes).
        "test": ["pytest", "pytest-xdist", "hypothesis", "matplotlib",
                 "jax[cpu]", "torch==2.13.0"],
    },
    entry_points={
        "console_scripts": ["keras-signadam=keras_signadam.comparison.cli:main"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
