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
    if np.all(delta == 0):
        return (np.abs(g) > 0).astype(f32)
    return np.clip(np.abs(g) / f32(delta) - 1, 0, 1).astype(f32)


def rms(g):
    g = g.astype(np.float64)
    return f32(np.sqrt(np.mean(g * g))) if g.size else f32(0)


def std(g):
    """Population standard deviation, in double precision."""
    return f32(np.std(g.astype(np.float64))) if g.size else f32(0)


def confidence(g, delta, kind, mode):
    if mode == "relative":
        delta = delta * rms(g)
    conf = hard_confidence if kind == "hard" else soft_confidence
    return conf(g, f32(delta))


class Confidence:
    """c(p) of one tensor, SPEC 3.4; the adaptive mode keeps the running
    standard deviation a <- 0.9 a + 0.1 std(p) (a0 = 0) and compares |p|
    with threshold * a, a updated first."""

    def __init__(self, threshold, kind="hard", mode="absolute"):
        if threshold is None:
            threshold = 0.999 if mode == "adaptive" else 5e-4
        self.delta, self.kind, self.mode = threshold, kind, mode
        self.a = f32(0)

    def __call__(self, p):
        if self.mode != "adaptive":
            return confidence(p, self.delta, self.kind, self.mode)
        self.a = f32(f32(0.9) * self.a + f32(0.1) * std(p))
        return confidence(p, f32(self.delta) * self.a, self.kind,
                          "absolute")


def with_coupled_decay(theta, g, l2):
    """p = g + l2 * theta (0 where g is not finite)."""
    return np.where(np.isfinite(g), clean(g) + f32(l2) * theta, f32(0))


class SignSGD:
    def __init__(self, lr=1e-3, threshold=None, confidence="hard",
                 threshold_mode="absolute", coupled_weight_decay=0.0,
                 weight_decay=None):
        if threshold is None and threshold_mode != "adaptive":
            threshold = 0.0
        self.lr, self.conf = lr, Confidence(threshold, confidence,
                                            threshold_mode)
        self.l2, self.wd = coupled_weight_decay, weight_decay

    def signal_input(self, theta, g):
        return with_coupled_decay(theta, g, self.l2)

    def ternary(self, p):
        return self.conf(p) * np.sign(p)

    def step(self, theta, g, t, **beta_1):
        """One step; `beta_1=` (SignAdamPP, AdamOfSigns) changes it from
        this step on."""
        s = self.ternary(self.signal_input(theta, g)) * np.isfinite(g)
        return self.apply(theta, s, t, **beta_1)

    def apply(self, theta, s, t):
        self.zero_confidence = int(np.sum(s == 0))
        theta = decoupled_decay(theta, self.lr, self.wd)
        return theta - f32(self.lr) * s


class Signum:
    def __init__(self, lr=1e-3, momentum=0.9, coupled_weight_decay=0.0,
                 weight_decay=None):
        self.lr, self.beta, self.wd = lr, momentum, weight_decay
        self.l2 = coupled_weight_decay
        self.m = None

    def step(self, theta, g, t):
        g = with_coupled_decay(theta, g, self.l2)
        if self.m is None:
            self.m = np.zeros_like(g)
        b = f32(self.beta)
        self.m = b * self.m + (f32(1) - b) * g
        theta = decoupled_decay(theta, self.lr, self.wd)
        return theta - f32(self.lr) * np.sign(self.m)


class SignAdamPP(SignSGD):
    """signADAM++, the paper's Algorithm 3 (SPEC 3.4):

        s = c(p) sign(p),  m <- beta m + (1 - beta) s,  theta <- theta - lr m

    with p the gradient plus the coupled L2 term; no second moment, no
    epsilon, no bias correction."""

    def __init__(self, lr=1e-3, threshold=None, confidence="hard",
                 threshold_mode="absolute", beta_1=0.9,
                 coupled_weight_decay=0.0, weight_decay=None):
        super().__init__(lr, threshold, confidence, threshold_mode,
                         coupled_weight_decay, weight_decay)
        if threshold is None and threshold_mode != "adaptive":
            self.conf.delta = 5e-4
        self.b1 = beta_1
        self.m = None

    def apply(self, theta, s, t, beta_1=None):
        if beta_1 is not None:
            self.b1 = beta_1
        self.zero_confidence = int(np.sum(s == 0))
        if self.m is None:
            self.m = np.zeros_like(s)
        b = f32(self.b1)
        self.m = b * self.m + (f32(1) - b) * s
        theta = decoupled_decay(theta, self.lr, self.wd)
        return theta - f32(self.lr) * self.m


class AdamOfSigns(SignSGD):
    """Adam's moments of the (filtered) sign, SPEC 3.3: signADAM (the
    paper's Algorithm 2) without bias correction, and with it the
    bias-corrected variant (`SignAdam(bias_correction=True)`, and
    `SignAdamPP(second_moment=True)` with a threshold)."""

    def __init__(self, lr=1e-3, threshold=0.0, confidence="hard",
                 threshold_mode="absolute", beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, bias_correction=True, coupled_weight_decay=0.0,
                 weight_decay=None):
        super().__init__(lr, threshold, confidence, threshold_mode,
                         coupled_weight_decay, weight_decay)
        self.b1, self.b2, self.eps = beta_1, beta_2, epsilon
        self.corrected = bias_correction
        self.m = self.v = None
        self.b1_product = 1.0

    def apply(self, theta, s, t, beta_1=None):
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
        m_hat, v_hat = self.m, self.v
        if self.corrected:
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
        self.replicas = replicas
        self.conf = Confidence(threshold, "hard", mode)
        self.l2 = coupled_weight_decay

    def signal_input(self, theta, g):
        return np.where(np.isfinite(g), clean(g) * f32(self.replicas)
                        + f32(self.l2) * theta, f32(0))

    def ternary(self, p):
        return self.conf(p) * np.sign(p)

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


class SGD:
    """theta - lr * g: an inner optimizer whose steps keep the gradient's
    magnitudes (sign-like steps make near-ties that a top-k then splits
    by rounding)."""

    def __init__(self, lr):
        self.lr = f32(lr)

    def step(self, theta, g, t):
        return (theta - self.lr * np.asarray(g, f32)).astype(f32)


class Adam:
    """Keras's Adam (Kingma & Ba, 2015, with the "epsilon hat" of their
    section 2, as Keras documents it):

        m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g**2
        theta -= lr sqrt(1 - b2**t) / (1 - b1**t) * m / (sqrt(v) + eps)
    """

    def __init__(self, lr=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        self.lr, self.b1, self.b2, self.eps = lr, beta_1, beta_2, epsilon
        self.m = self.v = None

    def step(self, theta, g, t):
        g = np.asarray(g, f32)
        if self.m is None:
            self.m, self.v = np.zeros_like(g), np.zeros_like(g)
        b1, b2 = f32(self.b1), f32(self.b2)
        self.m = self.m + (g - self.m) * (f32(1) - b1)
        self.v = self.v + (g * g - self.v) * (f32(1) - b2)
        alpha = f32(self.lr * np.sqrt(1 - self.b2 ** t) / (1 - self.b1 ** t))
        return theta - alpha * self.m / (np.sqrt(self.v) + f32(self.eps))


def top_k_2bit(p, density, chunk=4096):
    """SparseLoCo's compression as `LocalSteps` documents it: in each
    chunk of min(4096, n) components of the flat tensor (the last one
    shorter), the ceil(density * chunk) of largest magnitude (the first
    of equal ones), each sent as its sign times one of two levels: the
    mean magnitude of the kept ones at or above the midpoint of the least
    and largest kept magnitude, or of those below it."""
    flat = np.asarray(p, f32).reshape(-1)
    chunk = max(1, min(chunk, flat.size))
    kept = min(chunk, int(np.ceil(density * chunk)))
    q = np.zeros_like(flat)
    for start in range(0, flat.size, chunk):
        part = flat[start:start + chunk]
        order = np.argsort(-np.abs(part), kind="stable")[:kept]
        m = np.abs(part[order])
        high = m >= (m.min() + m.max()) / f32(2)
        levels = {side: f32(m[high == side].mean()) if np.any(high == side)
                  else f32(0) for side in (False, True)}
        for i, h in zip(order, high):
            q[start + i] = (f32(-1) if part[i] < 0 else f32(1)) * levels[h]
    return q.reshape(np.shape(p))


class LocalSteps:
    """Local steps with an outer step every `steps` steps (DiLoCo, with
    the sign outer step of DeMo and SparseLoCo), for R replicas of one
    tensor, each with its own inner reference (made by `inner_factory`)
    on its own gradient:

        d_r = a - theta_r;  d = mean_r d_r                  ("average")
        p_r = d_r + e_r, s_r = sign(p_r), k_r = <p_r, s_r> / <s_r, s_r>,
        e_r <- p_r - k_r s_r;  d = mean_r(k_r) sign(sum_r s_r)  ("sign")
        p_r = d_r + e_r, q_r = top_k_2bit(p_r), e_r <- p_r - q_r,
        d = mean_r q_r                                          ("top_k")
        u <- mu u + d;  a <- a - eta (d + mu u) (Nesterov) or a - eta u;
        theta_r <- a
    """

    def __init__(self, inner_factory, replicas, theta, steps, outer,
                 eta, mu, nesterov, density=1 / 64):
        self.inners = [inner_factory() for _ in range(replicas)]
        self.thetas = [np.asarray(theta, f32).copy()
                       for _ in range(replicas)]
        self.anchor = np.asarray(theta, f32).copy()
        self.u = np.zeros_like(self.anchor)
        self.e = [np.zeros_like(self.anchor) for _ in range(replicas)]
        self.steps, self.outer = steps, outer
        self.eta, self.mu, self.nesterov = f32(eta), f32(mu), nesterov
        self.density = density

    def step(self, grads, t):
        """One step; `grads[r]` is replica r's gradient (of its share, as
        its own mean)."""
        self.thetas = [inner.step(theta, g, t) for inner, theta, g in
                       zip(self.inners, self.thetas, grads)]
        if t % self.steps == 0:
            self.end_round()
        return self.thetas

    def end_round(self):
        changes = [self.anchor - theta for theta in self.thetas]
        if self.outer == "average":
            d = np.mean(np.stack(changes).astype(np.float64),
                        axis=0).astype(f32)
        elif self.outer == "top_k":
            sent = []
            for r, change in enumerate(changes):
                p = change + self.e[r]
                q = top_k_2bit(p, self.density)
                self.e[r] = (p - q).astype(f32)
                sent.append(q)
            d = np.mean(np.stack(sent).astype(np.float64),
                        axis=0).astype(f32)
        else:
            signs, scales = [], []
            for r, change in enumerate(changes):
                p = change + self.e[r]
                s = np.sign(p).astype(f32)
                norm = np.sum(s.astype(np.float64) ** 2)
                k = f32(np.sum(p.astype(np.float64) * s) / norm) if norm \
                    else f32(0)
                self.e[r] = (p - k * s).astype(f32)
                signs.append(s)
                scales.append(k)
            d = f32(np.mean(np.asarray(scales, np.float64))) * (
                majority_vote(signs))
        if self.mu:
            self.u = (self.mu * self.u + d).astype(f32)
            step = d + self.mu * self.u if self.nesterov else self.u
        else:
            step = d
        self.anchor = (self.anchor - self.eta * step).astype(f32)
        self.thetas = [self.anchor.copy() for _ in self.thetas]
