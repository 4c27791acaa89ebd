"""How fast the live plots redraw with a long, wide history (issue 4: > 20 redraws/s with 20 layers and
100,000 recorded steps).

Builds the real monitor panels on ``RunBuffers`` holding N steps × L layers of synthetic diagnostics,
then repeatedly appends one snapshot of new rows (as the worker would) and redraws + paints every
panel, timing complete frames (data → setData → paint into the widget's pixels). Runs offscreen by
default (software rasterizer, no display): ``QT_QPA_PLATFORM=offscreen python benchmarks/bench_plots.py``.

    python benchmarks/bench_plots.py [--steps 100000] [--layers 20] [--seconds 5] [--panels grad_norm,heatmap]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("LANG", "C.UTF-8")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from core.engine.diagnostics import EPOCH_METRICS, LAYER_QUANTITIES, STEP_QUANTITIES, Rows  # noqa: E402
from core.monitor import RunInfo, TrainingProgress, TrainingSnapshot  # noqa: E402


def synthetic_snapshot(start: int, n: int, layers: int, rng: np.random.Generator, reset: bool = False,
                       steps_per_epoch: int = 100) -> TrainingSnapshot:
    steps = np.arange(start + 1, start + n + 1, dtype=np.int64)
    depth = np.linspace(-4, 0, layers)[None, :]
    noise = rng.normal(0, 0.3, (n, layers))
    grad = (10 ** (depth + noise - 1e-5 * steps[:, None])).astype(np.float32)
    columns = {q: np.abs(rng.normal(0.1, 0.05, (n, layers))).astype(np.float32) for q in LAYER_QUANTITIES}
    columns["grad_norm"] = grad
    columns["update_ratio"] = (grad * 1e-2).astype(np.float32)
    if n > 10:
        columns["grad_norm"][n // 2, 3] = np.nan          # a NaN gap, as after a divergence
    columns["step"] = steps
    scalars = {"loss": (1 / np.sqrt(steps)).astype(np.float32), "learning_rate": np.full(n, 1e-3, np.float32)}
    columns.update({q: scalars[q] for q in STEP_QUANTITIES})
    epochs_done = (start + n) // steps_per_epoch
    first_epoch = start // steps_per_epoch
    ep = np.arange(first_epoch + 1, epochs_done + 1, dtype=np.float64)
    run = None
    if reset:
        run = RunInfo(layer_names=tuple(f"dense_{i} (elu, 100)" for i in range(layers - 1)) + ("output (softmax, 10)",),
                      steps_per_epoch=steps_per_epoch, epochs=1000, classification=True,
                      class_names=tuple(str(i) for i in range(10)),
                      planned_lr=(np.linspace(0, 1000, 2000), np.full(2000, 1e-3)), points=None, dataset="synthetic")
    return TrainingSnapshot(
        progress=TrainingProgress(step=start + n, epoch=epochs_done, epochs=1000, batch=0, batches=steps_per_epoch,
                                  done=start + n, total=100_000, rate=5000.0, eta=10.0, loss=float(scalars["loss"][-1]),
                                  paused=False, finished=False),
        rows=Rows(start, columns),
        epochs=Rows(first_epoch, {k: ep if k == "epoch" else 1 / np.sqrt(ep + 1) for k in EPOCH_METRICS}),
        events=(), health=(), frozen_layers=(False,) * layers, run=run)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--layers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--per-frame", type=int, default=50,
                        help="new steps appended before each frame (1,000 steps/s shown at 20 frames/s)")
    parser.add_argument("--panels", default="grad_norm,heatmap,metrics,flow,activations")
    parser.add_argument("--size", default="900x600", help="size of each plot widget in pixels")
    args = parser.parse_args()

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from workbench.monitor.buffers import RunBuffers
    from workbench.monitor.plots import (
        ActivationPanel,
        GradientFlowPanel,
        GradientNormPanel,
        HeatmapPanel,
        MetricsPanel,
    )

    classes = {"grad_norm": GradientNormPanel, "heatmap": HeatmapPanel, "metrics": MetricsPanel,
               "flow": GradientFlowPanel, "activations": ActivationPanel}
    rng = np.random.default_rng(0)
    buffers = RunBuffers()
    buffers.apply(synthetic_snapshot(0, args.steps, args.layers, rng, reset=True))
    w, h = (int(v) for v in args.size.split("x"))
    panels = {}
    for key in args.panels.split(","):
        panel = classes[key](buffers)
        panel.resize(w, h)
        panel.show()
        panel.clear_run()
        panels[key] = panel
    app.processEvents()
    for panel in panels.values():
        panel.min_interval = 0.0
        panel.redraw()
    app.processEvents()

    per_panel = {k: 0.0 for k in panels}
    frames = 0
    size = buffers.size
    t_end = time.perf_counter() + args.seconds
    t0 = time.perf_counter()
    while time.perf_counter() < t_end:
        buffers.apply(synthetic_snapshot(size, args.per_frame, args.layers, rng))
        size = buffers.size
        for key, panel in panels.items():
            t = time.perf_counter()
            panel.redraw(t)
            panel.graphics.viewport().repaint()      # paint now, synchronously, into the widget
            per_panel[key] += time.perf_counter() - t
        frames += 1
    elapsed = time.perf_counter() - t0
    print(f"platform {app.platformName()}, {args.layers} layers, {buffers.size:,} recorded steps "
          f"(+{args.per_frame} per frame), panels {w}x{h}")
    print(f"complete frames (all {len(panels)} panels redrawn and painted): {frames / elapsed:.1f} per second")
    for key, total in per_panel.items():
        ms = 1000 * total / frames
        print(f"  {key:12s} {ms:6.1f} ms a frame  ({1000 / ms if ms else float('inf'):.0f} redraws/s alone)")
    for panel in panels.values():
        panel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
