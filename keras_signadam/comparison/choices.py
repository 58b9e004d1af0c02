"""The names the command line offers, without importing Keras (so that
`--help` and argument errors answer at once)."""

# Optimizer name -> default learning rate.
DEFAULT_LEARNING_RATES = {
    "SignAdamPP": 1e-3,
    "SignAdam": 1e-3,
    "Signum": 1e-3,
    "SignSGD": 1e-3,
    "NovoGrad": 1e-2,
    "Hybrid": 1e-3,
    "Adam": 1e-3,
    "SGD-momentum": 1e-2,
    "Lion": 3e-4,
}

# The package's own optimizers (drawn boldly in curves.png).
OWN_OPTIMIZERS = ("SignAdamPP", "SignAdam", "Signum", "SignSGD", "NovoGrad",
                  "Hybrid")

MODELS = ("mlp", "cnn", "vgg", "resnet18")
