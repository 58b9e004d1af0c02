"""Forms of error feedback tried in the quality benchmark that are not part
of the package (it keeps a form only where it helps; see docs/quality.md).

`CompressedMomentumAdam` is the one-device form of 1-bit Adam's compressed
momentum (Tang et al., 2021): `warmup_steps` of Adam, then v frozen and the
first moment replaced, at every step, by its scaled sign with the
compression error fed back,

    p = beta_1 m + (1 - beta_1) g + e
    m = a sign(p),  a = <p, sign(p)> / <sign(p), sign(p)>  (= ||p||_1 / d)
    e <- p - m
    theta <- theta - lr * m / (sqrt(v_hat) + epsilon)

with v_hat the bias-corrected second moment at the end of the warm-up
(1-bit Adam freezes it: v cannot be compressed for communication, and a
live v that decays towards 0 where gradients vanish turns the tensor-wide
scale a into steps of a / sqrt(v)). The scale is the least-squares one of
the package's error feedback. State: m, v and e (12 bytes per parameter).
"""

import keras
from keras import ops


class CompressedMomentumAdam(keras.optimizers.Optimizer):
    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, warmup_steps=100, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.warmup_steps = warmup_steps

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._m, self._v, self._e = (
            self.add_optimizer_variables(var_list, name)
            for name in ("momentum", "velocity", "residual"))

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        m, v, e = self._m[index], self._v[index], self._e[index]
        # Embeddings hand over sparse gradients; the residual is dense.
        g = ops.add(ops.zeros_like(variable),
                    ops.cast(gradient, variable.dtype))
        lr = ops.cast(learning_rate, variable.dtype)
        t = ops.cast(self.iterations + 1, variable.dtype)
        warm = t <= self.warmup_steps
        # v follows Adam during the warm-up and is frozen after it.
        v_new = ops.where(warm, self.beta_2 * v + (1.0 - self.beta_2)
                          * ops.square(g), v)
        self.assign(v, v_new)
        frozen_t = ops.minimum(t, float(max(self.warmup_steps, 1)))
        v_hat = v_new / (1.0 - ops.power(self.beta_2, frozen_t))
        p = self.beta_1 * m + (1.0 - self.beta_1) * g
        # Adam's bias-corrected momentum during the warm-up; after it the
        # compressed momentum, whose scale carries no start-up bias.
        p_fed = p + e
        s = ops.sign(p_fed)
        norm = ops.sum(ops.square(s))
        scale = ops.where(norm > 0,
                          ops.sum(p_fed * s) / ops.maximum(norm, 1.0), 0.0)
        compressed = scale * s
        m_new = ops.where(warm, p, compressed)
        self.assign(e, ops.where(warm, ops.zeros_like(e),
                                 p_fed - compressed))
        self.assign(m, m_new)
        direction = ops.where(
            warm, m_new / (1.0 - ops.power(self.beta_1, t)), m_new)
        self.assign_sub(variable,
                        lr * direction / (ops.sqrt(v_hat) + self.epsilon))

    def get_config(self):
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2,
                      epsilon=self.epsilon, warmup_steps=self.warmup_steps)
        return config


class AdamL2(keras.optimizers.Adam):
    """Adam with coupled L2, as PyTorch's `Adam(weight_decay=l2)` and the
    paper's non-AW runs: the gradient is g + l2 * theta before Adam sees
    it (Keras's Adam has only the decoupled form)."""

    def __init__(self, learning_rate=1e-3, l2=5e-4, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.l2 = l2

    def update_step(self, gradient, variable, learning_rate):
        gradient = gradient + self.l2 * ops.cast(variable, gradient.dtype)
        super().update_step(gradient, variable, learning_rate)
