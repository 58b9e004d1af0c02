"""Independent NumPy implementations of the update rules.

Written from the published formulas (the papers cited in each optimizer's
docstring, restated in the README's "The update rules"), not from the
package: every test that checks an
optimizer's numbers compares against these. Arithmetic is float32 (the
package computes 16-bit variables in float32 and casts the result back, so
the reference does the same with `store`).
"""

import numpy as np

f32 = np.float32


def store(value, dtype):
    """Round a float32 value to the variable's dtype and back."""
    return np.asarray(value, f32).astype(dtype).astype(f32)


def clean(g):
    """Non-finite components count as zero gradient."""
    g = np.asarray(g, f32)
    return np.where(np.isfinite(g), g, f32(0))


def decoupled_decay(theta, lr, weight_decay):
    if not weight_decay:
        return theta
    return theta - f32(lr) * f32(weight_decay) * theta


def hard_confidence(g, delta):
    return (np.abs(g) > delta).astype(f32)


def soft_confidence(g, delta):
    if delta == 0:
        return (np.abs(g) > 0).astype(f32)
    return np.clip(np.abs(g) / f32(delta) - 1, 0, 1).astype(f32)


def rms(g):
    g = g.astype(np.float64)
    return f32(np.sqrt(np.mean(g * g))) if g.size else f32(0)


def confidence(g, delta, kind, mode):
    if mode == "relative":
        delta = delta * rms(g)
    conf = hard_confidence if kind == "hard" else soft_confidence
    return conf(g, f32(delta))


class SignSGD:
    def __init__(self, lr=1e-3, threshold=0.0, confidence="hard",
                 threshold_mode="absolute", coupled_weight_decay=0.0,
                 weight_decay=None):
        self.lr, self.delta = lr, threshold
        self.kind, self.mode = confidence, threshold_mode
        self.l2, self.wd = coupled_weight_decay, weight_decay

    def signal_input(self, theta, g):
        """The gradient with coupled L2 decay (0 where g is not finite)."""
        return np.where(np.isfinite(g), clean(g) + f32(self.l2) * theta,
                        f32(0))

    def ternary(self, p):
        return confidence(p, self.delta, self.kind, self.mode) * np.sign(p)

    def step(self, theta, g, t):
        s = self.ternary(self.signal_input(theta, g)) * np.isfinite(g)
        return self.apply(theta, s, t)

    def apply(self, theta, s, t):
        self.zero_confidence = int(np.sum(s == 0))
        theta = decoupled_decay(theta, self.lr, self.wd)
        return theta - f32(self.lr) * s


class Signum:
    def __init__(self, lr=1e-3, momentum=0.9, weight_decay=None):
        self.lr, self.beta, self.wd = lr, momentum, weight_decay
        self.m = None

    def step(self, theta, g, t):
        g = clean(g)
        if self.m is None:
            self.m = np.zeros_like(g)
        b = f32(self.beta)
        self.m = b * self.m + (f32(1) - b) * g
        theta = decoupled_decay(theta, self.lr, self.wd)
        return theta - f32(self.lr) * np.sign(self.m)


class SignAdamPP:
    """SignAdam when threshold is 0 and confidence is hard."""

    def __init__(self, lr=1e-3, threshold=0.0, confidence="hard",
                 threshold_mode="absolute", beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, weight_decay=None):
        self.lr, self.delta = lr, threshold
        self.kind, self.mode = confidence, threshold_mode
        self.b1, self.b2, self.eps, self.wd = beta_1, beta_2, epsilon, (
            weight_decay
        )
        self.m = self.v = None
        self.b1_product = 1.0

    def signal_input(self, theta, g):
        return clean(g)

    def ternary(self, p):
        return confidence(p, self.delta, self.kind, self.mode) * np.sign(p)

    def step(self, theta, g, t, beta_1=None):
        return self.apply(theta, self.ternary(clean(g)), t, beta_1)

    def apply(self, theta, s, t, beta_1=None):
        """The Adam part of the rule on the signal s."""
        if beta_1 is not None:
            self.b1 = beta_1
        self.zero_confidence = int(np.sum(s == 0))
        if self.m is None:
            self.m, self.v = np.zeros_like(s), np.zeros_like(s)
        b1, b2 = f32(self.b1), f32(self.b2)
        self.m = b1 * self.m + (f32(1) - b1) * s
        # 1 - beta_2 in double precision: float32 rounding of beta_2 near 1
        # would change it by up to 20%.
        self.v = b2 * self.v + f32(1 - self.b2) * s * s
        self.b1_product *= self.b1
        m_hat = self.m / f32(1 - self.b1_product)
        v_hat = self.v / f32(1 - self.b2 ** t)
        theta = decoupled_decay(theta, self.lr, self.wd)
        return theta - f32(self.lr) * m_hat / (np.sqrt(v_hat) + f32(self.eps))


class NovoGrad:
    def __init__(self, lr=1e-3, beta_1=0.95, beta_2=0.98, epsilon=1e-8,
                 weight_decay=0.0, grad_averaging=False,
                 amsgrad=False):
        self.lr, self.b1, self.b2, self.eps = lr, beta_1, beta_2, epsilon
        self.d, self.averaging, self.amsgrad = (
            weight_decay or 0.0, grad_averaging, amsgrad
        )
        self.m = None
        self.v = self.v_max = 0.0

    def step(self, theta, g, t):
        g = clean(g)
        norm2 = float(np.sum(g.astype(np.float64) ** 2))
        self.v = norm2 if t == 1 else self.b2 * self.v + (1 - self.b2) * norm2
        self.v_max = max(self.v_max, self.v)
        v = self.v_max if self.amsgrad else self.v
        direction = g / (f32(np.sqrt(v)) + f32(self.eps)) + f32(self.d) * theta
        if self.averaging:
            direction = (f32(1) - f32(self.b1)) * direction
        if self.m is None:
            self.m = np.zeros_like(g)
        self.m = f32(self.b1) * self.m + direction
        return theta - f32(self.lr) * self.m


class ErrorFeedback:
    """Error feedback (SPEC 3.6) around a sign-family reference with
    `signal_input`, `ternary` and `apply`:

        p = g + e,  s = c(p) sign(p),  e <- p - a s,  a = <p, s> / <s, s>

    per tensor (a = 0 when s = 0); components whose gradient is not finite
    get s = 0 and keep their residual."""

    def __init__(self, inner):
        self.inner = inner
        self.e = None

    def signal(self, theta, g):
        """The signal to send, with the residual updated."""
        finite = np.isfinite(g)
        if self.e is None:
            self.e = np.zeros(np.shape(g), f32)
        p = self.inner.signal_input(theta, g) + self.e
        s = (self.inner.ternary(p) * finite).astype(f32)
        norm = np.sum(s.astype(np.float64) ** 2)
        a = f32(np.sum(p.astype(np.float64) * s) / norm) if norm else f32(0)
        self.e = np.where(finite, p - a * s, self.e).astype(f32)
        return s

    def step(self, theta, g, t):
        return self.inner.apply(theta, self.signal(theta, g), t)

    @property
    def zero_confidence(self):
        return self.inner.zero_confidence


class ReplicaSignal:
    """One replica's ternary signal under majority-vote aggregation: the
    hard confidence-filtered sign of its gradient share `g` scaled to the
    global gradient (times `replicas`), with coupled weight decay."""

    def __init__(self, replicas, threshold=0.0, mode="absolute",
                 coupled_weight_decay=0.0):
        self.replicas, self.delta, self.mode = replicas, threshold, mode
        self.l2 = coupled_weight_decay

    def signal_input(self, theta, g):
        return np.where(np.isfinite(g), clean(g) * f32(self.replicas)
                        + f32(self.l2) * theta, f32(0))

    def ternary(self, p):
        return confidence(p, self.delta, "hard", self.mode) * np.sign(p)

    def signal(self, theta, g):
        s = self.ternary(self.signal_input(theta, g))
        return s * np.isfinite(g)


def local_signal(g, theta, replicas, threshold=0.0, mode="absolute",
                 coupled_weight_decay=0.0):
    return ReplicaSignal(replicas, threshold, mode,
                         coupled_weight_decay).signal(theta, g)


def majority_vote(signals):
    """sign of the sum of the replicas' signals (ties give 0)."""
    return np.sign(np.sum(signals, axis=0)).astype(f32)


def clip_by_norm(g, clipnorm):
    norm = np.sqrt(np.sum(g.astype(np.float64) ** 2))
    return g * f32(clipnorm / max(norm, clipnorm))


def run(reference_factory, thetas, grads, dtype, clipnorm=None,
        clipvalue=None):
    """Applies per-variable references over steps.

    `thetas`: list of initial float32 arrays; `grads`: list over steps of
    lists of gradient arrays. Returns final float32 parameter arrays.
    """
    refs = [reference_factory() for _ in thetas]
    thetas = [store(th, dtype) for th in thetas]
    for t, step_grads in enumerate(grads, start=1):
        new = []
        for ref, theta, g in zip(refs, thetas, step_grads):
            g = store(g, dtype) if np.all(np.isfinite(g)) else g
            if clipnorm is not None:
                g = clip_by_norm(g, clipnorm)
            if clipvalue is not None:
                # Keras clips in the gradient's dtype, with a bound rounded
                # to that dtype.
                bound = store(clipvalue, dtype)
                g = np.clip(g, -bound, bound)
            new.append(store(ref.step(theta, g, t), dtype))
        thetas = new
    return thetas, refs
