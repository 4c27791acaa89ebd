"""Training › Autosave settings…: how often the recovery copy is written (kept in QSettings)."""

from __future__ import annotations

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from core.sessions.recovery import recovery_dir

from .autosave import ENABLED_KEY, EVERY_EPOCH_KEY, INTERVAL_KEY, autosave_settings


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
        self.every_epoch.setToolTip("Also write the copy whenever an epoch ends")
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
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def accept(self) -> None:
        self.settings.setValue(ENABLED_KEY, self.enabled.isChecked())
        self.settings.setValue(EVERY_EPOCH_KEY, self.every_epoch.isChecked())
        self.settings.setValue(INTERVAL_KEY, float(self.interval.value()))
        super().accept()
