"""The live plots: one module per panel over a shared base.

- ``base``: ``PlotPanel`` (tool row, pull-based refresh, export) and ``DockPlace``;
- ``downsample``: the min / max envelope of long curves; ``style``: layer colours, pens, names
  and event marks;
- the panels: ``gradient_norm`` (the central plot), ``metrics``, ``gradient_flow``,
  ``activations``, ``heatmap``, ``boundary``, ``confusion``, ``distributions``;
- the instrument panels over ``instrument`` (how-to-read note, off bar with Turn on):
  ``sharpness``, ``noise``, ``effective_lr``.

Every docked panel declares where it docks (``PlotPanel.dock``); the monitor docks the classes
listed in ``DOCKED_PANELS`` there. A new panel is a module here and one entry in that list.
"""

from __future__ import annotations

from .activations import ActivationPanel
from .base import DockPlace, GatedGraphicsLayout, PlotPanel
from .boundary import CLASS_COLOURS, BoundaryPanel
from .confusion import ConfusionPanel
from .distributions import DistributionPanel
from .downsample import BlockReducer, envelope, visible_slice
from .effective_lr import EffectiveLearningRatePanel
from .gradient_flow import HEALTHY_RATIO, GradientFlowPanel
from .gradient_norm import GradientNormPanel
from .heatmap import HEATMAP_LEVELS, MAX_HEATMAP_COLUMNS, HeatmapPanel
from .instrument import InstrumentPanel
from .metrics import MetricsPanel
from .noise import NoisePanel
from .sharpness import SharpnessPanel
from .style import (
    EVENT_COLOURS,
    EVENT_LABELS,
    UnfreezeMarks,
    layer_colours,
    layer_label,
    layer_pen,
    layer_ticks,
    short_name,
)

#: The panels the monitor docks, each where its ``dock`` says (their order here does not matter).
DOCKED_PANELS: tuple[type[PlotPanel], ...] = (
    MetricsPanel,
    GradientFlowPanel,
    ActivationPanel,
    HeatmapPanel,
    BoundaryPanel,
    ConfusionPanel,
    DistributionPanel,
    SharpnessPanel,
    NoisePanel,
    EffectiveLearningRatePanel,
)

__all__ = [
    "CLASS_COLOURS",
    "DOCKED_PANELS",
    "EVENT_COLOURS",
    "EVENT_LABELS",
    "HEALTHY_RATIO",
    "HEATMAP_LEVELS",
    "MAX_HEATMAP_COLUMNS",
    "ActivationPanel",
    "BlockReducer",
    "BoundaryPanel",
    "ConfusionPanel",
    "DistributionPanel",
    "DockPlace",
    "EffectiveLearningRatePanel",
    "GatedGraphicsLayout",
    "GradientFlowPanel",
    "GradientNormPanel",
    "HeatmapPanel",
    "InstrumentPanel",
    "MetricsPanel",
    "NoisePanel",
    "PlotPanel",
    "SharpnessPanel",
    "UnfreezeMarks",
    "envelope",
    "layer_colours",
    "layer_label",
    "layer_pen",
    "layer_ticks",
    "short_name",
    "visible_slice",
]
