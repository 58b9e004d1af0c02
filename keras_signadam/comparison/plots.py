"""curves.png: loss and accuracy per epoch for every optimizer."""

import os

from keras_signadam.comparison import choices

# Keras's optimizers in muted tones and distinct dash patterns; the
# package's own in strong colours, thicker, drawn on top, each with its
# own marker and line style, so curves that coincide stay apart.
_OWN_COLOURS = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e",
                "#e377c2"]
_OWN_MARKERS = ["o", "s", "^", "D", "v", "P"]
_OWN_LINES = ["-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (3, 1, 1, 1, 1, 1))]
_BASELINE_COLOURS = ["#7f7f7f", "#8c564b", "#bcbd22", "#17becf"]
_BASELINE_DASHES = [(None, None), (6, 2), (2, 2), (6, 2, 2, 2)]


def _styles(names):
    styles, own, baseline = {}, 0, 0
    for name in names:
        if name in choices.OWN_OPTIMIZERS:
            kind = own % len(_OWN_COLOURS)
            styles[name] = dict(color=_OWN_COLOURS[kind], linewidth=2.2,
                                zorder=3, marker=_OWN_MARKERS[kind],
                                linestyle=_OWN_LINES[kind],
                                markersize=5, markevery=(own % 3, 3),
                                markerfacecolor="none")
            own += 1
        else:
            dashes = _BASELINE_DASHES[baseline % 4]
            styles[name] = dict(color=_BASELINE_COLOURS[baseline % 4],
                                linewidth=1.3, zorder=2, alpha=0.85,
                                **({} if dashes[0] is None
                                   else {"dashes": dashes}))
            baseline += 1
    return styles


def plot_curves(results, path, title=""):
    """Four panels: train and test loss, train and test accuracy. Needs
    matplotlib (the `plots` extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    styles = _styles(results)
    figure, axes = plt.subplots(2, 2, figsize=(12, 8), sharex=True)
    panels = [("loss", "train loss"), ("val_loss", "test loss"),
              ("accuracy", "train accuracy"),
              ("val_accuracy", "test accuracy")]
    for axis, (key, label) in zip(axes.flat, panels):
        for name, r in results.items():
            values = r["history"].get(key)
            if values:
                axis.plot(range(1, len(values) + 1), values, label=name,
                          **styles[name])
        axis.set(title=label, ylabel=label.split()[-1])
        if "loss" in key:
            axis.set_yscale("log")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
    for axis in axes[1]:
        axis.set_xlabel("epoch")
    axes[1][1].legend(loc="lower right", fontsize="small")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    # Written beside and renamed: an interrupt leaves the previous figure.
    partial = os.path.join(os.path.dirname(os.path.abspath(path)),
                           ".curves-partial.png")
    try:
        figure.savefig(partial, dpi=110)
        os.replace(partial, path)
    finally:
        plt.close(figure)
        if os.path.exists(partial):
            os.remove(partial)
