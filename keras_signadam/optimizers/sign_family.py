"""The optimizers that step by a rule of `sign_steps` on their ternary
signal (`SignAdam`, `SignAdamPP`).

Each step, for each variable:

    s = the signal (`base.Optimizer.sign_signal`: the optimizer's ternary
        signal of the gradient with coupled decay, through error feedback,
        or the replicas' vote)
    theta <- theta - lr * direction(s)     (`step_rule`, `sign_steps.py`)

after the base class's decoupled weight decay. A subclass passes its
rule to `__init__` and says in `ternary` how the signal is formed; the
moments it keeps are the rule's.
"""

from keras_signadam.optimizers import base
from keras_signadam.optimizers import hyperparameters


class SignalStepOptimizer(base.Optimizer):
    """Shared by `SignAdam` and `SignAdamPP` (module docstring)."""

    def __init__(self, learning_rate, step_rule, beta_1, **kwargs):
        step_rule.check_beta_1("beta_1", beta_1, kwargs.get("state_dtype"))
        super().__init__(learning_rate=learning_rate,
                         moments=step_rule.moments, **kwargs)
        self.step_rule = step_rule
        self.beta_1 = self.add_hyperparameter("beta_1", beta_1,
                                              self._check_beta_1)

    def _check_beta_1(self, name, value):
        return self.step_rule.check_beta_1(name, value, self.state_dtype)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self.step_rule.build(self, var_list)

    def update_step(self, gradient, variable, learning_rate):
        g, raw = self.prepare_gradient(gradient, variable)
        lr = self.step_size(learning_rate, variable)
        s, zeros = self.sign_signal(g, raw, variable)
        direction, moment_writes = self.step_rule.direction(self, s,
                                                            variable)
        theta = self.decayed_value(variable, lr)
        new_value = theta - lr * direction
        self.write_variable(variable, new_value)
        self.write_moments(variable, *moment_writes, after=new_value)
        self.flush_later_writes(variable)
        self.record_statistics(variable, raw, zeros)

    def moment_bound(self, name):
        return self.step_rule.moment_bound(name)

    def finish_step(self):
        self.step_rule.finish(self)

    def get_config(self):
        config = super().get_config()
        config["beta_1"] = hyperparameters.read(self.beta_1)
        config.update(self.step_rule.config())
        return config
