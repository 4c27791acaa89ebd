"""The optimizer race: the book's "visualize different optimizations" on 2-D surfaces, and its
Table 11-2 (convergence speed and quality) measured instead of quoted (chapter 11, "Faster
Optimizers").

A surface is a function f(θ) of θ = (x, y) with its gradient, its minima, a start point and a
plot range. Every registered optimizer (``core.engine.optimizers.OPTIMIZERS``) runs on it from the
same start: the parameter is one float64 array of shape (2,), the gradient is the surface's,
and each step is the optimizer object's own ``apply`` — the lab never re-implements an
update. So a new optimizer registered in ``core.engine.optimizers`` races here by itself, and what
is drawn is exactly what training would do with the same gradients.

Nesterov keeps the look-ahead point θ + βm as its parameter (see ``core.engine.optimizers.Nesterov``);
its trajectory is that point, the one whose gradient it measures.

Measured quantities, for a tolerance τ:

    distance_t = min over minima θ* of ‖θ_t − θ*‖₂
    steps to tolerance = the first t from which distance stays < τ up to step N (None if it does
                         not end inside; passing through the ball and leaving again does not count)
    final distance     = distance_N after N steps

A run that leaves the finite numbers, or goes beyond ``DIVERGED_NORM`` from the origin, is cut
short and marked ``diverged``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from core.engine import validation as check
from core.engine.optimizers import OPTIMIZERS, Optimizer
from core.engine.registry import Registry

__all__ = [
    "DEFAULT_TOLERANCE",
    "MOMENTUM_LIKE",
    "SURFACES",
    "Surface",
    "TableRow",
    "Trajectory",
    "DOCS_BEGIN",
    "DOCS_END",
    "book_rating",
    "disagreements",
    "docs_block",
    "format_report",
    "format_table",
    "learning_rate_grid",
    "measured_table",
    "momentum_parameter",
    "race",
    "run_optimizer",
    "tune_learning_rate",
    "write_docs",
]

DEFAULT_TOLERANCE = 1e-3
DIVERGED_NORM = 1e6
MAX_STEPS = 100_000
#: The hyperparameter that plays the role of momentum, in the order looked for:
#: momentum / Nesterov's β (friction), Adam-family β1 (decay of the mean gradient), RMSProp's ρ
#: (decay of the mean squared gradient). AdaGrad and SGD have none.
MOMENTUM_LIKE = ("momentum", "beta_1", "rho")


class Surface:
    """A 2-D test function. Subclasses give ``value`` and ``gradient`` (both broadcast over arrays
    of x and y, for contour plots) and the class attributes below."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    #: One line for the GUI tooltip: what the surface is and which optimizer behaviour it shows.
    summary: ClassVar[str] = ""
    minima: ClassVar[tuple[tuple[float, float], ...]] = ()
    start: ClassVar[tuple[float, float]] = (0.0, 0.0)
    x_range: ClassVar[tuple[float, float]] = (-1.0, 1.0)
    y_range: ClassVar[tuple[float, float]] = (-1.0, 1.0)
    #: Steps a race runs by default (long enough for the good optimizers to arrive).
    steps: ClassVar[int] = 300
    #: Whether contours are drawn on log(1 + f − f*) (surfaces spanning many orders of magnitude).
    log_contours: ClassVar[bool] = False

    def value(self, x: Any, y: Any) -> Any:
        raise NotImplementedError

    def gradient(self, x: Any, y: Any) -> tuple[Any, Any]:
        raise NotImplementedError

    def minimum_value(self) -> float:
        return float(self.value(*self.minima[0]))

    def grad(self, theta: np.ndarray) -> np.ndarray:
        """∇f(θ) as a float64 array of shape (2,)."""
        gx, gy = self.gradient(float(theta[0]), float(theta[1]))
        return np.array([gx, gy], dtype=np.float64)

    def distance(self, points: np.ndarray) -> np.ndarray:
        """min over minima θ* of ‖θ − θ*‖₂, for points of shape (..., 2)."""
        points = np.asarray(points, dtype=np.float64)
        d = [np.hypot(points[..., 0] - mx, points[..., 1] - my) for mx, my in self.minima]
        return np.min(d, axis=0)

    def grid(self, n: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x (n,), y (n,) and f on the grid, shape (n, n) indexed [ix, iy] (pyqtgraph's image order)."""
        xs = np.linspace(*self.x_range, n)
        ys = np.linspace(*self.y_range, n)
        X, Y = np.meshgrid(xs, ys, indexing="ij")
        with np.errstate(over="ignore"):
            return xs, ys, self.value(X, Y)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


SURFACES: Registry[type[Surface]] = Registry("surface")


@SURFACES.register("bowl")
class ElongatedBowl(Surface):
    title = "Elongated bowl (ill-conditioned quadratic)"
    summary = ("f = ½(x² + 20y²): a valley 20× steeper across than along. Gradient descent zig-zags "
               "across and crawls along it; momentum builds speed along the floor, AdaGrad and RMSProp "
               "scale the steep axis down and point straight at the minimum (the book's Figure 11-7).")
    minima = ((0.0, 0.0),)
    start = (-4.5, 1.2)
    x_range = (-5.0, 5.0)
    y_range = (-2.0, 2.0)
    steps = 300
    CURVATURE = 20.0

    def value(self, x: Any, y: Any) -> Any:
        """f(x, y) = ½ (x² + 20 y²)"""
        return 0.5 * (x * x + self.CURVATURE * y * y)

    def gradient(self, x: Any, y: Any) -> tuple[Any, Any]:
        """∇f = (x, 20 y)"""
        return x, self.CURVATURE * y


@SURFACES.register("rosenbrock")
class Rosenbrock(Surface):
    title = "Rosenbrock's banana valley"
    summary = ("f = (1 − x)² + 100(y − x²)²: a narrow curved valley with a flat floor; easy to find, "
               "slow to follow to the minimum at (1, 1). Plain SGD needs a tiny rate to stay in the valley.")
    minima = ((1.0, 1.0),)
    start = (-1.5, 2.0)
    x_range = (-2.0, 2.0)
    y_range = (-1.0, 3.0)
    steps = 2000
    log_contours = True

    def value(self, x: Any, y: Any) -> Any:
        """f(x, y) = (1 − x)² + 100 (y − x²)²"""
        return (1 - x) ** 2 + 100 * (y - x * x) ** 2

    def gradient(self, x: Any, y: Any) -> tuple[Any, Any]:
        """∂f/∂x = −2(1 − x) − 400 x (y − x²);  ∂f/∂y = 200 (y − x²)"""
        r = y - x * x
        return -2 * (1 - x) - 400 * x * r, 200 * r


@SURFACES.register("beale")
class Beale(Surface):
    title = "Beale's function"
    summary = ("f = (1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²: flat regions next to very "
               "steep walls, minimum at (3, 0.5); a fixed learning rate is either too slow or too big.")
    minima = ((3.0, 0.5),)
    start = (1.0, 1.4)
    x_range = (-1.0, 4.5)
    y_range = (-1.5, 2.0)
    steps = 2000
    log_contours = True

    def value(self, x: Any, y: Any) -> Any:
        """f(x, y) = Σ_k (c_k − x + x y^k)²,  (c_1, c_2, c_3) = (1.5, 2.25, 2.625)"""
        return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2

    def gradient(self, x: Any, y: Any) -> tuple[Any, Any]:
        """With r_k = c_k − x + x y^k:  ∂f/∂x = Σ 2 r_k (y^k − 1);  ∂f/∂y = Σ 2 r_k · k x y^(k−1)"""
        r1, r2, r3 = 1.5 - x + x * y, 2.25 - x + x * y**2, 2.625 - x + x * y**3
        gx = 2 * r1 * (y - 1) + 2 * r2 * (y**2 - 1) + 2 * r3 * (y**3 - 1)
        gy = 2 * r1 * x + 4 * r2 * x * y + 6 * r3 * x * y**2
        return gx, gy


@SURFACES.register("saddle")
class Saddle(Surface):
    title = "Saddle point"
    summary = ("f = 5x² + ¼(y² − 1)²: a saddle at the origin between two minima at (0, ±1). Starting on the "
               "ridge, the gradient across it is tiny, and the steep x direction caps the learning rate: SGD "
               "lingers at the saddle, momentum escapes sooner, the adaptive methods (AdaGrad, RMSProp, Adam) "
               "blow the tiny gradient up and leave at once.")
    minima = ((0.0, 1.0), (0.0, -1.0))
    start = (-1.5, 1e-3)
    x_range = (-2.0, 2.0)
    y_range = (-1.8, 1.8)
    steps = 400
    CURVATURE = 10.0

    def value(self, x: Any, y: Any) -> Any:
        """f(x, y) = 5 x² + ¼ (y² − 1)²"""
        return 0.5 * self.CURVATURE * x * x + 0.25 * (y * y - 1) ** 2

    def gradient(self, x: Any, y: Any) -> tuple[Any, Any]:
        """∇f = (10 x, y (y² − 1))"""
        return self.CURVATURE * x, y * (y * y - 1)


@SURFACES.register("plateau")
class Plateau(Surface):
    title = "Plateau around a well"
    summary = ("f = 1 − exp(−(x² + 2y²)/2): almost flat far from the minimum, so the gradient is tiny "
               "there. SGD crawls across the plateau, momentum accelerates on it, Adam and RMSProp "
               "normalize the gradient and cross it at full speed.")
    minima = ((0.0, 0.0),)
    start = (3.0, 1.5)
    x_range = (-3.5, 3.5)
    y_range = (-2.5, 2.5)
    steps = 400

    def value(self, x: Any, y: Any) -> Any:
        """f(x, y) = 1 − exp(−(x² + 2y²)/2)"""
        return 1 - np.exp(-(x * x + 2 * y * y) / 2)

    def gradient(self, x: Any, y: Any) -> tuple[Any, Any]:
        """∇f = exp(−(x² + 2y²)/2) · (x, 2y)"""
        e = np.exp(-(x * x + 2 * y * y) / 2)
        return e * x, e * 2 * y


# ------------------------------------------------------------------------------------ running


def momentum_parameter(optimizer: str) -> str | None:
    """The optimizer's momentum-like hyperparameter (``MOMENTUM_LIKE``), or None if it has none."""
    params = OPTIMIZERS.get(optimizer).parameters()
    return next((p for p in MOMENTUM_LIKE if p in params), None)


@dataclass
class Trajectory:
    """One optimizer's run: ``points`` (n + 1, 2) from the start, ``gradients`` (n, 2) at each step's
    parameter, ``steps`` (n, 2) the updates θ_{t+1} − θ_t, ``distances`` (n + 1,) to the nearest
    minimum."""

    optimizer: str
    learning_rate: float
    hyperparameters: dict[str, float]
    points: np.ndarray
    gradients: np.ndarray
    steps: np.ndarray
    distances: np.ndarray
    tolerance: float
    steps_to_tolerance: int | None
    diverged: bool

    @property
    def final_distance(self) -> float:
        return math.inf if self.diverged else float(self.distances[-1])

    @property
    def n_steps(self) -> int:
        return len(self.steps)


def run_optimizer(surface: Surface, optimizer: str, learning_rate: float, steps: int, *,
                  hyperparameters: Mapping[str, float] | None = None, start: Sequence[float] | None = None,
                  tolerance: float = DEFAULT_TOLERANCE) -> Trajectory:
    """Run a registered optimizer from ``start`` (default: the surface's) for ``steps`` steps.

    θ_0 = start;  for t = 0..steps−1:  g_t = ∇f(θ_t);  optimizer.apply({θ}, {g_t}, η)  (in place).
    ``hyperparameters`` are the optimizer's other constructor arguments (e.g. ``momentum``); the
    rate η is constant (no schedule).
    """
    check.positive("learning_rate", learning_rate)
    check.positive_int("steps", steps, high=MAX_STEPS)
    check.positive("tolerance", tolerance)
    hyper = {k: float(v) for k, v in (hyperparameters or {}).items()}
    opt: Optimizer = OPTIMIZERS.get(optimizer).from_config({"learning_rate": learning_rate, **hyper})
    opt.fused_updates = False   # NumPy's arithmetic: the measured table is the same on every machine
    theta = np.array(start if start is not None else surface.start, dtype=np.float64)
    params, grads, updates = {"theta": theta}, {"theta": np.zeros(2)}, {"theta": np.zeros(2)}
    opt.build(params)
    points = np.empty((steps + 1, 2))
    gradients = np.empty((steps, 2))
    moves = np.empty((steps, 2))
    points[0] = theta
    n, diverged = 0, False
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps):
            grads["theta"][:] = surface.grad(theta)
            opt.apply(params, grads, learning_rate, updates)
            gradients[t], moves[t], points[t + 1] = grads["theta"], updates["theta"], theta
            n = t + 1
            if not np.all(np.isfinite(theta)) or float(np.hypot(*theta)) > DIVERGED_NORM:
                diverged = True
                break
    points = points[:n + 1]
    distances = surface.distance(points)
    return Trajectory(optimizer=optimizer, learning_rate=float(learning_rate), hyperparameters=hyper,
                      points=points, gradients=gradients[:n], steps=moves[:n], distances=distances,
                      tolerance=tolerance, steps_to_tolerance=None if diverged else _arrival(distances, tolerance),
                      diverged=diverged)


def _arrival(distances: np.ndarray, tolerance: float) -> int | None:
    """The first index from which every distance is below the tolerance, or None."""
    outside = np.flatnonzero(~(distances < tolerance))
    if outside.size == 0:
        return 0
    last = int(outside[-1])
    return None if last == len(distances) - 1 else last + 1


@dataclass(frozen=True)
class RaceEntry:
    """One lane of a race: an optimizer, its learning rate and other hyperparameters."""

    optimizer: str
    learning_rate: float
    hyperparameters: Mapping[str, float] = field(default_factory=dict)


def race(surface: Surface, entries: Iterable[RaceEntry], steps: int | None = None, *,
         tolerance: float = DEFAULT_TOLERANCE) -> list[Trajectory]:
    """Every entry from the surface's start for the same number of steps (default ``surface.steps``)."""
    n = surface.steps if steps is None else steps
    return [run_optimizer(surface, e.optimizer, e.learning_rate, n, hyperparameters=e.hyperparameters,
                          tolerance=tolerance) for e in entries]


def learning_rate_grid(low: float = 1e-4, high: float = 3.0, per_decade: int = 4) -> np.ndarray:
    """Log-spaced rates, ``per_decade`` a decade: η_k = low · 10^(k / per_decade) up to ``high``."""
    n = int(math.floor(per_decade * math.log10(high / low) + 1e-9)) + 1
    return low * 10.0 ** (np.arange(n) / per_decade)


def _score(t: Trajectory) -> tuple[float, float]:
    """Lower is better: arriving sooner first, then a smaller final distance."""
    return (t.steps_to_tolerance if t.steps_to_tolerance is not None else math.inf, t.final_distance)


def tune_learning_rate(surface: Surface, optimizer: str, steps: int | None = None, *,
                       grid: Sequence[float] | None = None, tolerance: float = DEFAULT_TOLERANCE,
                       hyperparameters: Mapping[str, float] | None = None) -> Trajectory:
    """The best run over a grid of learning rates: the fewest steps to tolerance, else the smallest
    final distance (the other hyperparameters stay at ``hyperparameters`` / their defaults)."""
    n = surface.steps if steps is None else steps
    rates = learning_rate_grid() if grid is None else grid
    best: Trajectory | None = None
    for lr in rates:
        run = run_optimizer(surface, optimizer, float(lr), n, hyperparameters=hyperparameters,
                            tolerance=tolerance)
        if best is None or _score(run) < _score(best):
            best = run
    assert best is not None
    return best


# ------------------------------------------------------------------------------------ Table 11-2

def book_rating(optimizer: str) -> tuple[str, str] | None:
    """The book's (speed, quality) stars for an optimizer: its class's ``rating`` (None if the
    book's Table 11-2 does not rate it)."""
    rating = OPTIMIZERS.get(optimizer).rating
    return None if rating is None else (rating.speed, rating.quality)


@dataclass
class TableRow:
    """One optimizer in the measured Table 11-2: per surface, the tuned rate, the steps to tolerance
    (None: never) and the final distance; then the star ratings derived from them."""

    optimizer: str
    learning_rates: dict[str, float]
    steps_to_tolerance: dict[str, int | None]
    final_distance: dict[str, float]
    speed: str = ""
    quality: str = ""
    book: tuple[str, str] | None = None


def _stars(n: int) -> str:
    return "*" * n


def measured_table(surfaces: Sequence[str] | None = None, optimizers: Sequence[str] | None = None, *,
                   steps: int | None = None, tolerance: float = DEFAULT_TOLERANCE,
                   grid: Sequence[float] | None = None, progress: Callable[[int, int], None] | None = None,
                   should_stop: Callable[[], bool] | None = None) -> list[TableRow]:
    """Table 11-2 measured: every optimizer (default: all registered) on every surface (default: all),
    each at its best learning rate from ``grid`` (``tune_learning_rate``), for ``steps`` steps
    (default: each surface's own).

    Ratings, relative to the field:

    * speed — over the surfaces every optimizer reached, r = geometric mean of
      steps / (fewest steps on that surface); *** if r ≤ 1.5, ** if r ≤ 4, * otherwise
      (a surface an optimizer never reached counts as 10× the fewest).
    * quality — the share of surfaces where it got within the tolerance in the steps given:
      *** all of them, ** at least 60 %, * fewer.

    ``progress(done, total)`` is called after each (optimizer, surface) cell; if ``should_stop()``
    turns true the table is abandoned and ``[]`` returned.
    """
    names = list(SURFACES.names() if surfaces is None else surfaces)
    opts = list(OPTIMIZERS.names() if optimizers is None else optimizers)
    rows = []
    total = len(opts) * len(names)
    for opt in opts:
        row = TableRow(opt, {}, {}, {}, book=book_rating(opt))
        for name in names:
            if should_stop is not None and should_stop():
                return []
            best = tune_learning_rate(SURFACES.get(name)(), opt, steps, grid=grid, tolerance=tolerance)
            row.learning_rates[name] = best.learning_rate
            row.steps_to_tolerance[name] = best.steps_to_tolerance
            row.final_distance[name] = best.final_distance
            if progress is not None:
                progress(len(rows) * len(names) + len(row.learning_rates), total)
        rows.append(row)
    ratios: dict[str, list[float]] = {r.optimizer: [] for r in rows}
    for name in names:
        reached = [r.steps_to_tolerance[name] for r in rows if r.steps_to_tolerance[name] is not None]
        fewest = max(min(reached), 1) if reached else None  # type: ignore[type-var]
        for r in rows:
            s = r.steps_to_tolerance[name]
            ratios[r.optimizer].append(10.0 if fewest is None or s is None else max(s, 1) / fewest)
    for r in rows:
        g = math.exp(sum(math.log(x) for x in ratios[r.optimizer]) / max(len(names), 1))
        r.speed = _stars(3 if g <= 1.5 else 2 if g <= 4 else 1)
        share = sum(s is not None for s in r.steps_to_tolerance.values()) / max(len(names), 1)
        r.quality = _stars(3 if share == 1 else 2 if share >= 0.6 else 1)
    return rows



def measured_table_job(progress: Callable[[tuple[int, int]], None], should_stop: Callable[[], bool],
                       tolerance: float, grid: Sequence[float]) -> list[TableRow]:
    """``measured_table`` in the shape of a job (``core.process.ProcessJob``: the window runs it in
    a child process); ``progress`` gets ``(cells done, cells in all)``."""
    return measured_table(tolerance=tolerance, grid=grid, progress=lambda done, total: progress((done, total)),
                          should_stop=should_stop)

def _accepted(stars: str) -> set[str]:
    """The book's rating as the set of star counts it allows ("** or ***" allows both)."""
    return {part.strip() for part in stars.split(" or ")}


def disagreements(rows: Sequence[TableRow], tolerance: float = DEFAULT_TOLERANCE,
                  grid: Sequence[float] | None = None) -> list[str]:
    """One line per optimizer whose measured rating differs from the book's, saying why from the
    measurement itself: the surfaces where it was slow or never settled within ``tolerance`` (with
    the final distance), and a best rate at the edge of the ``grid`` (a wider grid might do better).
    The book rates deep networks trained with schedules; these are 2-D toy surfaces at a constant rate."""
    rates = learning_rate_grid() if grid is None else np.asarray(grid, dtype=np.float64)
    lines = []
    if not rows:
        return lines
    names = list(rows[0].steps_to_tolerance)
    fewest: dict[str, tuple[int, str] | None] = {}
    for name in names:
        reached = [(r.steps_to_tolerance[name], r.optimizer) for r in rows if r.steps_to_tolerance[name] is not None]
        fewest[name] = min(reached) if reached else None   # type: ignore[type-var]
    for r in rows:
        if r.book is None:
            continue
        reasons = []
        missed = [n for n in names if r.steps_to_tolerance[n] is None]
        if r.speed not in _accepted(r.book[0]):
            slow = [(r.steps_to_tolerance[n] / max(fewest[n][0], 1), n) for n in names   # type: ignore[index,operator]
                    if r.steps_to_tolerance[n] is not None and fewest[n] is not None]
            what = f"speed {r.speed} (book {r.book[0]})"
            if slow:
                ratio, name = max(slow)
                what += (f": slowest on {name}, {r.steps_to_tolerance[name]} steps against "
                         f"{fewest[name][0]} for {fewest[name][1]} ({ratio:.1f}×)")   # type: ignore[index]
            reasons.append(what)
        where = ", ".join(f"{n} (ended {r.final_distance[n]:.1e} away)" for n in missed)
        if r.quality not in _accepted(r.book[1]):
            reasons.append(f"quality {r.quality} (book {r.book[1]}): "
                           + (f"never settled within {tolerance:g} on {where}" if missed else
                              "settled on every surface"))
        elif missed and reasons:            # a surface never reached also counts against its speed
            reasons.append(f"never settled within {tolerance:g} on {where}")
        if not reasons:
            continue
        edges = [n for n in names if np.isclose(r.learning_rates[n], rates[-1]) or np.isclose(r.learning_rates[n],
                                                                                                rates[0])]
        if edges:
            reasons.append("best rate at the edge of the grid on " + ", ".join(edges))
        lines.append(f"{r.optimizer}: " + "; ".join(reasons) + ".")
    return lines


def format_table(rows: Sequence[TableRow]) -> str:
    """The measured table as Markdown: steps to tolerance (tuned rate) and final distance per surface,
    the measured ratings and the book's."""
    if not rows:
        return ""
    names = list(rows[0].steps_to_tolerance)
    head = ["optimizer", *[f"{n}: steps (η)" for n in names], *[f"{n}: final dist." for n in names],
            "speed", "quality", "book speed", "book quality"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        steps = [f"{r.steps_to_tolerance[n] if r.steps_to_tolerance[n] is not None else '—'} "
                 f"({r.learning_rates[n]:.3g})" for n in names]
        dist = [f"{r.final_distance[n]:.1e}" for n in names]
        book = list(r.book) if r.book else ["—", "—"]
        lines.append("| " + " | ".join([r.optimizer, *steps, *dist, r.speed, r.quality, *book]) + " |")
    return "\n".join(lines)


def format_report(rows: Sequence[TableRow], tolerance: float = DEFAULT_TOLERANCE,
                  grid: Sequence[float] | None = None) -> str:
    """``format_table`` and, below it, a line per disagreement with the book saying why
    (``disagreements``): what the window's *Measure Table 11-2…* and docs/labs.md show."""
    lines = [format_table(rows)]
    why = disagreements(rows, tolerance, grid)
    if why:
        lines += ["", "Where the measurement and the book disagree (the book rates deep networks trained with "
                      "schedules; these are 2-D surfaces at a constant rate):", ""]
        lines += [f"- {line}" for line in why]
    return "\n".join(lines)


#: The markers around the measured table in docs/labs.md, which ``--docs`` rewrites.
DOCS_BEGIN = "<!-- measured Table 11-2: python -m core.labs.optimizer_race --docs docs/labs.md -->"
DOCS_END = "<!-- end of the measured Table 11-2 -->"


def docs_block(text: str) -> str:
    """The measured table as the docs hold it (between ``DOCS_BEGIN`` and ``DOCS_END``)."""
    start, end = text.index(DOCS_BEGIN) + len(DOCS_BEGIN), text.index(DOCS_END)
    return text[start:end].strip()


def write_docs(path: str, table: str) -> None:
    """Replace the measured table in a docs page (between the markers) by ``table``."""
    page = Path(path)
    text = page.read_text(encoding="utf-8")
    start, end = text.index(DOCS_BEGIN) + len(DOCS_BEGIN), text.index(DOCS_END)
    page.write_text(text[:start] + "\n" + table + "\n" + text[end:], encoding="utf-8")


if __name__ == "__main__":
    table = format_report(measured_table())
    if len(sys.argv) == 3 and sys.argv[1] == "--docs":
        write_docs(sys.argv[2], table)
    else:
        print(table)
