"""Backend-specific parts of the optimizers (as in `keras/src/backend`)."""
