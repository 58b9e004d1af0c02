"""The comparison program (`keras-signadam`, `python -m keras_signadam`):
trains one model with several optimizers and compares them.

An application of the optimizer library, not part of it: it needs the
`compare` extra (tensorflow-datasets, scikit-learn, matplotlib).
"""
