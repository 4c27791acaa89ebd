"""Preferences kept in QSettings: Training › Autosave settings… (how often the recovery copy is
written), Training › Data set downloads… (a mirror for the book's data sets) and Training ›
Training threads… (automatic, or a count for every run whose experiment leaves it open).

The mirror reaches ``core.data.download`` the way a user outside the app would set it: as the
``GRADIENT_WORKBENCH_MIRROR`` environment variable of the app's process. A value set outside
the app wins: the preference is then shown but not applied.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.data.download import MIRROR_VARIABLE, cache_dir
from core.engine.threads import usable_cores
from core.sessions.recovery import recovery_dir

from .autosave import ENABLED_KEY, EVERY_EPOCH_KEY, INTERVAL_KEY, autosave_settings


def ok_cancel(dialog: QDialog) -> QDialogButtonBox:
    """The OK and Cancel buttons of a preferences dialog, wired to its ``accept`` and ``reject``."""
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    return buttons


class AutosaveDialog(QDialog):
    """Edit the autosave settings; ``accept()`` writes them to ``settings``."""

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("autosaveDialog")
        self.setWindowTitle("Autosave")
        self.settings = settings
        enabled, interval, every_epoch = autosave_settings(settings)
        layout = QVBoxLayout(self)
        intro = QLabel("While a run trains, a recovery copy of the session is kept up to date, so a crash "
                       "or a power cut loses at most one interval of work. It sits next to the session "
                       f"(<tt>.NAME.gwb.recovery</tt>) or, for an unsaved one, in <tt>{recovery_dir()}</tt>, "
                       "and is deleted when the session is saved or the window is closed normally.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.enabled = QCheckBox("Keep a recovery copy while training")
        self.enabled.setChecked(enabled)
        self.every_epoch = QCheckBox("After every epoch")
        self.every_epoch.setChecked(every_epoch)
        self.every_epoch.setToolTip("Also write the copy when an epoch ends, at most every 10 s (short epochs "
                                    "would otherwise spend more time copying than training)")
        self.interval = QDoubleSpinBox()
        self.interval.setObjectName("autosaveInterval")
        self.interval.setRange(1.0, 3600.0)
        self.interval.setDecimals(0)
        self.interval.setSuffix(" s")
        self.interval.setValue(interval)
        self.interval.setToolTip("Write the copy at least this often, whatever the epoch length")
        form.addRow(self.enabled)
        form.addRow(self.every_epoch)
        form.addRow("At least every", self.interval)
        layout.addLayout(form)
        self.enabled.toggled.connect(self.every_epoch.setEnabled)
        self.enabled.toggled.connect(self.interval.setEnabled)
        self.every_epoch.setEnabled(enabled)
        self.interval.setEnabled(enabled)
        layout.addWidget(ok_cancel(self))

    def accept(self) -> None:
        self.settings.setValue(ENABLED_KEY, self.enabled.isChecked())
        self.settings.setValue(EVERY_EPOCH_KEY, self.every_epoch.isChecked())
        self.settings.setValue(INTERVAL_KEY, float(self.interval.value()))
        super().accept()


# ---------------------------------------------------------------------------- the download mirror

MIRROR_KEY = "data/mirror"
_applied: list[str | None] = [None]     # the value this process itself put into the environment


def mirror_from_outside() -> str | None:
    """The mirror set in the environment by whoever started the app (not by the preference)."""
    value = os.environ.get(MIRROR_VARIABLE, "").strip()
    return value if value and value != _applied[0] else None


def mirror_preference(settings: QSettings) -> str:
    return str(settings.value(MIRROR_KEY, "") or "").strip()


def check_mirror(value: str) -> str | None:
    """Why ``value`` cannot be a mirror base URL, or None (empty: the official locations)."""
    if not value:
        return None
    url = urlparse(value)
    if url.scheme not in ("http", "https") or not url.netloc:
        return f"must be an http:// or https:// address, like https://example.org/datasets; got {value!r}"
    return None


def apply_mirror(settings: QSettings) -> None:
    """Put the preference into this process's environment, unless the variable was set outside."""
    if mirror_from_outside() is not None:
        return
    value = mirror_preference(settings)
    if value and check_mirror(value) is None:
        os.environ[MIRROR_VARIABLE] = value
        _applied[0] = value
    elif _applied[0] is not None:
        os.environ.pop(MIRROR_VARIABLE, None)
        _applied[0] = None


class DownloadDialog(QDialog):
    """Edit the mirror the book's data sets are downloaded from; ``accept()`` stores and applies it."""

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("downloadDialog")
        self.setWindowTitle("Data set downloads")
        self.settings = settings
        layout = QVBoxLayout(self)
        intro = QLabel("Fashion-MNIST, MNIST and CIFAR-10 are downloaded once, on first use, from their official "
                       f"locations into <tt>{cache_dir()}</tt>. If your network blocks those hosts, give a mirror: "
                       "each file is then fetched as <tt>MIRROR/&lt;official file name&gt;</tt> (and checked "
                       "against the same SHA-256 digest).")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.mirror = QLineEdit(mirror_preference(settings))
        self.mirror.setObjectName("mirrorUrl")
        self.mirror.setPlaceholderText("empty: the official locations")
        self.mirror.setToolTip("Base URL of a mirror of the data set files")
        form.addRow("Mirror", self.mirror)
        layout.addLayout(form)
        self.error = QLabel()
        self.error.setObjectName("mirrorError")
        self.error.setStyleSheet("color: #d32f2f")
        self.error.setWordWrap(True)
        self.error.hide()
        layout.addWidget(self.error)
        outside = mirror_from_outside()
        self.outside_note = QLabel(f"{MIRROR_VARIABLE} is set to <tt>{outside}</tt> where the app was started; "
                                   "it is used instead of this preference." if outside else "")
        self.outside_note.setObjectName("mirrorOverridden")
        self.outside_note.setWordWrap(True)
        self.outside_note.setVisible(outside is not None)
        layout.addWidget(self.outside_note)
        layout.addWidget(ok_cancel(self))

    def accept(self) -> None:
        value = self.mirror.text().strip()
        problem = check_mirror(value)
        if problem is not None:
            self.error.setText(f"Mirror: {problem}")
            self.error.show()
            return
        self.settings.setValue(MIRROR_KEY, value)
        apply_mirror(self.settings)
        super().accept()


# ---------------------------------------------------------------------------- training threads

THREADS_KEY = "training/threads"
#: The largest count the preference takes (as ``training.blas_threads``).
MAX_THREADS = 256


def threads_preference(settings: QSettings) -> int | None:
    """The thread count the user prefers for a run whose experiment says "auto", or ``None``
    (automatic: the default, and what an unreadable value means)."""
    try:
        value = int(settings.value(THREADS_KEY, 0))
    except (TypeError, ValueError):
        return None
    return value if 1 <= value <= MAX_THREADS else None


class ThreadsDialog(QDialog):
    """Choose the threads of the next runs: automatic or a fixed count; ``accept()`` stores it.

    An experiment that fixes ``training.blas_threads`` keeps its own count: the preference is
    this machine's, the experiment's field travels with the experiment."""

    def __init__(self, settings: QSettings, current: int | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("threadsDialog")
        self.setWindowTitle("Training threads")
        self.settings = settings
        preferred = threads_preference(settings)
        layout = QVBoxLayout(self)
        intro = QLabel("How many threads a run's large matrix products are split over. Automatic: one, unless "
                       "the network's largest product is big enough to gain from more (the 784-300-100-10 "
                       "network from batch 69 on), then the cores other programs leave free, less one for "
                       f"this window. This machine has {usable_cores()} cores for the app. The count changes "
                       "how fast a run trains, never its numbers. It applies from the next Train; an "
                       "experiment that sets its own count (Training › Diagnostics and numerics) keeps it.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.automatic = QRadioButton("Automatic")
        self.automatic.setObjectName("threadsAutomatic")
        self.fixed = QRadioButton("Always")
        self.fixed.setObjectName("threadsFixed")
        self.count = QSpinBox()
        self.count.setObjectName("threadsCount")
        self.count.setRange(1, MAX_THREADS)
        self.count.setSuffix(" threads")
        self.count.setValue(preferred or usable_cores())
        self.count.setToolTip(f"1 to {MAX_THREADS}; more than the machine's cores only makes the threads wait")
        row = QHBoxLayout()
        row.addWidget(self.fixed)
        row.addWidget(self.count)
        row.addStretch(1)
        layout.addWidget(self.automatic)
        layout.addLayout(row)
        (self.fixed if preferred is not None else self.automatic).setChecked(True)
        self.count.setEnabled(preferred is not None)
        self.fixed.toggled.connect(self.count.setEnabled)
        self.current = QLabel(f"The current run trains on {current} thread{'s' if current != 1 else ''}."
                              if current else "")
        self.current.setObjectName("threadsCurrent")
        self.current.setVisible(bool(current))
        layout.addWidget(self.current)
        layout.addWidget(ok_cancel(self))

    def accept(self) -> None:
        self.settings.setValue(THREADS_KEY, int(self.count.value()) if self.fixed.isChecked() else 0)
        super().accept()
