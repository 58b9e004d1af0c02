import keras
import numpy as np

from keras_signadam.landscape import evaluation


class LossInterpolation(keras.callbacks.Callback):
    """Records the loss between consecutive iterates during training.

    Every `every` training steps, the probed step's parameters before
    (theta_prev) and after (theta_now) are compared on a probe batch: the
    loss at ``theta_prev + a * (theta_now - theta_prev)`` for each a in
    `alphas`. Following "A Walk with SGD" (Xing et al., 2018), the curve is
    mostly convex with a minimum, the valley floor, in between; the
    optimizer bounces off the valley walls at a height above it. Each probe
    records:

    - `floor_position`: where the minimum lies (0 = theta_prev,
      1 = theta_now; refined by a parabola through the grid minimum),
    - `floor_loss`, and `height_before` / `height_after`: the loss at a = 0
      and a = 1 above the floor,
    - `step_length`: ``||theta_now - theta_prev||``,
    - `cosine`: between this step and the step just before it.

    The full series is kept in `self.records` (one dict per probe, with
    `step`, `alphas` and `losses` too); the latest figures are written into
    the epoch's `logs` with the prefix `walk_`. The probe is evaluated in
    inference mode and the weights are restored exactly afterwards, so
    training is the same with and without this callback.

    Args:
        probe_data: ``(x, y)`` arrays of one probe batch.
        every: Probe every this many training steps. Defaults to `100`.
        alphas: Grid of a. Defaults to 11 points in [0, 1]; values beyond
            extrapolate along the step.
    """

    def __init__(self, probe_data, every=100, alphas=None):
        super().__init__()
        if not (isinstance(probe_data, tuple) and len(probe_data) == 2):
            raise ValueError(
                "Argument `probe_data` must be an (x, y) tuple. Received: "
                f"{type(probe_data).__name__}"
            )
        if not isinstance(every, int) or every < 1:
            raise ValueError(
                "Argument `every` must be an integer >= 1. "
                f"Received: every={every!r}"
            )
        alphas = (np.linspace(0.0, 1.0, 11) if alphas is None
                  else np.asarray(alphas, dtype=np.float64))
        if alphas.ndim != 1 or len(alphas) < 3 or not np.all(
                np.isfinite(alphas)):
            raise ValueError(
                "Argument `alphas` must be at least 3 finite numbers. "
                f"Received: alphas={alphas!r}"
            )
        self.probe_data = probe_data
        self.every = every
        self.alphas = alphas
        self.records = []

    def on_train_begin(self, logs=None):
        self._step = 0  # index of the step about to run
        self._snapshot_for_next = None
        self._before = self._before_previous = None
        self._loss = evaluation.loss_function(self.model)

    def on_train_batch_begin(self, batch, logs=None):
        # Probed steps are every-1, 2*every-1, ...; the step before each
        # one is kept for the cosine.
        probe = (self._step + 1) % self.every == 0
        feeds_next = (self._step + 2) % self.every == 0
        snapshot = (self.model.get_weights() if probe or feeds_next
                    else None)
        if probe:
            self._before = snapshot
            self._before_previous = self._snapshot_for_next
        self._snapshot_for_next = snapshot if feeds_next else None

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self._before is not None:
            self._probe()

    def _probe(self):
        before, after = self._before, self.model.get_weights()
        previous_before = self._before_previous
        self._before = self._before_previous = None
        step = [a - b for a, b in zip(after, before)]
        x, y = self.probe_data
        losses = []
        with evaluation.restored_weights(self.model):
            for a in self.alphas:
                self.model.set_weights(
                    evaluation.combine(before, [(step, a)]))
                losses.append(self._loss(x, y))
        losses = np.array(losses)
        floor_position, floor_loss = evaluation.valley_floor(
            self.alphas, losses)
        loss_before = losses[np.argmin(np.abs(self.alphas))]
        loss_after = losses[np.argmin(np.abs(self.alphas - 1.0))]
        length = np.sqrt(sum(float(np.sum(d.astype(np.float64) ** 2))
                             for d in step))
        cosine = None
        if previous_before is not None:
            previous = [b - p for b, p in zip(before, previous_before)]
            dot = sum(float(np.sum(d.astype(np.float64) * p))
                      for d, p in zip(step, previous))
            norm = np.sqrt(sum(float(np.sum(p.astype(np.float64) ** 2))
                               for p in previous))
            cosine = dot / (length * norm) if length and norm else 0.0
        self.records.append({
            "step": self._step,
            "alphas": self.alphas.tolist(),
            "losses": losses.tolist(),
            "floor_position": floor_position,
            "floor_loss": floor_loss,
            "height_before": float(loss_before - floor_loss),
            "height_after": float(loss_after - floor_loss),
            "step_length": float(length),
            "cosine": cosine,
        })

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or not self.records:
            return
        latest = self.records[-1]
        for key in ("floor_position", "height_before", "height_after",
                    "step_length", "cosine"):
            if latest[key] is not None:
                logs[f"walk_{key}"] = latest[key]
