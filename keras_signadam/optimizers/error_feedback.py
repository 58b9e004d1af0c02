"""Error feedback for the sign family (opt-in: `error_feedback=True`).

Taking the sign of a gradient discards its magnitude. Error feedback
(Seide et al., 2014, 1-bit SGD; Karimireddy et al., 2019, EF-signSGD)
keeps what the compression dropped and adds it to the next gradient. For
a tensor with gradient g and residual e:

    p = g + e
    s = c(p) * sign(p)            (the optimizer's own ternary signal)
    a = <p, s> / <s, s>           (one scale per tensor; 0 when s = 0)
    e <- p - a * s

and the update rule then runs on s, unchanged. `a * s` is the multiple of
s closest to p (least squares), so ||e||^2 = ||p||^2 - <p, s>^2 / <s, s>:
the compression itself never makes the residual grow. For plain signs
(s = sign(p), no zero components) a is EF-signSGD's ||p||_1 / d. A small
but consistent component accumulates in e until it passes the threshold
(or, for plain signs, until its sign carries it), so the confidence
function gains a memory instead of dropping it for good. Non-finite
gradient components get s = 0 and leave their residual as it was.

The residual is optimizer state stored through the same codecs as the
moments (`storage.py`: float32 or stochastically rounded bfloat16; it is
not bounded, so not int8). Where the compression happens decides whose it
is (`aggregation.py`): on one device, and under the exact sum, the update
compresses the gradient and the residual is mirrored like the moments;
under `aggregation="majority_vote"` with several replicas each replica
compresses its own share before the vote and keeps its own residual (a
worker residual, as in 1-bit Adam and EF-signSGD with majority vote).

A new form of feedback is one new class with `moments`, `build` and
`signal`, and one entry in `FORMS`.
"""

from keras import ops

from keras_signadam.optimizers import confidence
from keras_signadam.optimizers import reductions
from keras_signadam.optimizers import storage

RESIDUAL = storage.Moment("residual")

# The stochastic rounding of the residual draws from its own stream, apart
# from the moments' (which use the variable's index).
_RESIDUAL_STREAM = -1


class Off:
    """No feedback: the signal is the optimizer's local signal."""

    moments = ()

    def build(self, optimizer, var_list):
        pass

    def signal(self, optimizer, g, raw_gradient, variable):
        return optimizer.local_signal(g, raw_gradient, variable)


def least_squares_scale(p, s):
    """a = <p, s> / <s, s> over the tensor (0 where s is all zero)."""
    numerator = ops.sum(reductions.row_sums(p * s))
    denominator = ops.sum(reductions.row_sums(ops.square(s)))
    return ops.where(denominator > 0,
                     numerator / ops.maximum(denominator, 1e-30),
                     ops.zeros_like(numerator))


class ScaledSign:
    """The residual of the scaled sign (module docstring)."""

    moments = (RESIDUAL,)

    def build(self, optimizer, var_list):
        self.residuals = optimizer.add_moment(
            var_list, RESIDUAL,
            per_replica=optimizer.aggregation_strategy.per_replica_signal())

    def signal(self, optimizer, g, raw_gradient, variable):
        e = optimizer.read_moment(self.residuals, variable, g.dtype)
        raw = reductions.formed(raw_gradient)
        finite = ops.isfinite(raw)
        x = optimizer.signal_input(g, raw, variable)
        p = x + e

        def formed_again():
            # p (the same bits) from the raw gradient and the stored
            # residual, for the threshold's statistics: their fallback
            # branch would otherwise take p, which XLA then writes out.
            # Another expression than p's and the scale's, so that XLA
            # does not merge them (see below).
            again = optimizer.signal_input_again(raw_gradient, variable)
            residual = optimizer.read_moment(self.residuals, variable,
                                             g.dtype)
            return residual - ops.negative(again)

        rule = optimizer.ternary_rule(p, variable, source=formed_again)

        def filtered(y):
            s, _ = rule(y)
            return ops.where(finite, s, ops.zeros_like(s))

        s = filtered(p)
        # The scale's sums read p formed a second time, as x - (-e) (the
        # same bits): XLA writes out in full a tensor that feeds both a
        # sum and an element-wise use of the sum's result, here p and s.
        # With the residual's write order (`write_moments_later`) that
        # made SignAdamPP's XLA update with error feedback 2.7x as fast on
        # 2 CPU cores (CHANGELOG, 0.6.0).
        fresh = x - ops.negative(e)
        a = least_squares_scale(fresh, filtered(fresh))
        optimizer.write_moments_later(
            variable, (self.residuals, ops.where(finite, p - a * s, e)),
            stream=_RESIDUAL_STREAM)
        return s, confidence.zero_indicator(s)


FORMS = {False: Off, True: ScaledSign}


def form(enabled):
    return FORMS[enabled]()
