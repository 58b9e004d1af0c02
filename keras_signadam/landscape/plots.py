"""matplotlib figures of the landscape tools (needs the `plots` extra)."""

import numpy as np


def _figure(ax, figsize=(6, 4)):
    import matplotlib

    if ax is None:
        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        figure, ax = plt.subplots(figsize=figsize)
        return figure, ax
    return ax.figure, ax


def _finish(figure, path):
    if path is not None:
        figure.tight_layout()
        figure.savefig(path, dpi=110)
    return figure


def plot_curve(alphas, losses, label=None, xlabel="a", ax=None, path=None,
               title=None):
    """A 1-D loss curve (from `interpolate` or `slice_1d`)."""
    figure, ax = _figure(ax)
    ax.plot(alphas, losses, marker="o", markersize=3, label=label)
    ax.set(xlabel=xlabel, ylabel="loss", title=title or "")
    if label:
        ax.legend()
    return _finish(figure, path)


def plot_slice_2d(alphas, betas, losses, ax=None, path=None, title=None,
                  levels=20):
    """Contours of a 2-D slice (from `slice_2d`)."""
    figure, ax = _figure(ax, figsize=(5.5, 5))
    grid_a, grid_b = np.meshgrid(alphas, betas, indexing="ij")
    contours = ax.contourf(grid_a, grid_b, losses, levels=levels,
                           cmap="viridis")
    figure.colorbar(contours, ax=ax, label="loss")
    ax.plot([0], [0], "w+", markersize=12)
    ax.set(xlabel="direction 1", ylabel="direction 2", title=title or "")
    return _finish(figure, path)


def plot_walk(records, ax=None, path=None, title=None):
    """`LossInterpolation.records` over training: the heights of the two
    ends of each probed step above the valley floor, and where the floor
    lies between them (0 = before the step, 1 = after)."""
    figure, ax = _figure(ax, figsize=(7, 4))
    steps = [r["step"] for r in records]
    ax.plot(steps, [r["height_before"] for r in records],
            label="height before step")
    ax.plot(steps, [r["height_after"] for r in records],
            label="height after step")
    ax.set(xlabel="training step", ylabel="height above valley floor",
           yscale="symlog", title=title or "")
    twin = ax.twinx()
    twin.plot(steps, [r["floor_position"] for r in records], "k.",
              label="floor position")
    twin.set_ylabel("valley floor position a")
    ax.legend(loc="upper right")
    return _finish(figure, path)
