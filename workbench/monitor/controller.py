"""The training controller: the GUI-thread half of training (actions, state machine, sessions).

It owns the worker thread and the run's GUI-side buffers. By default training runs in a child
process (``ProcessWorker``: the worker thread only relays the child's messages; ``trainer`` is
then a ``RemoteTrainer`` stand-in); with ``child_process`` off it runs on the worker thread
itself (``TrainingWorker``: a run that needs this interpreter, e.g. an optimizer registered at
run time by a test). Either way the controller never calls the trainer while a job runs
(``worker.active``): it queues jobs and asks for whatever it needs (a state copy for saving, a
new learning rate) to be done at the next batch boundary.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractEventDispatcher, QObject, QThread, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMessageBox, QWidget

from core.monitor import TrainingSnapshot, hyperparameter_only_change
from core.sessions.format import Session, SessionError, session_members, write_session
from core.sessions.trainer_io import restore_trainer
from core.spec import Experiment, SpecError, parse_experiment
from core.training import Trainer

from ..state import ExperimentState
from .buffers import RunBuffers
from .worker import ProcessWorker, RemoteTrainer, TrainingWorker

SAVE_WAIT_SECONDS = 10.0

# Controller modes.
IDLE, BUILDING, RUNNING, PAUSED, STEPPING, STOPPING = "idle", "building", "running", "paused", "stepping", "stopping"

_ACTIONS = {
    # name: (text, shortcut, tooltip)
    "train": ("&Train", "F5", "Train the model (continue the current run, or start one from fresh weights "
                              "if the experiment changed or the run is complete)"),
    "pause": ("&Pause", "F6", "Hold training before the next batch; the plots stay live"),
    "resume": ("Res&ume", "F7", "Continue a paused run"),
    "stop": ("St&op", "Shift+F5", "End the run after the current batch; the weights are kept (Train continues)"),
    "step": ("&Step", "F10", "Train on one mini-batch and update every plot: watch a single step"),
    "reset": ("&Reset weights", "Ctrl+Shift+F5", "Discard the trained weights and history; draw fresh weights "
                                                 "from the experiment's initializers"),
}


class TrainingController(QObject):
    """Train / Pause / Resume / Stop / Step / Reset, sessions, and the run's buffers."""

    status = Signal(str)
    error = Signal(str)
    mode_changed = Signal(str)
    updated = Signal()                 # a snapshot arrived (GUI thread): buffers changed
    run_reset = Signal()               # the buffers were cleared for a new trainer
    session_saved = Signal(object)     # Path of a session file just written by save_session
    crashed = Signal(str)              # the training process died (what happened); the buffers are kept

    opening = Signal(object)           # Path of a session being opened on the worker; None when done
    _job_build = Signal(object, object, object)
    _job_open = Signal(object)
    _job_train = Signal()
    _job_step = Signal()
    _job_refresh = Signal()

    #: Train in a child process (the default); False: on the worker thread of this process.
    child_process = True

    def __init__(self, state: ExperimentState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.buffers = RunBuffers()
        self.trainer: Trainer | RemoteTrainer | None = None   # owned by the worker while worker.active is set
        self.mode = IDLE
        self.stale = False                     # the trainer no longer matches the experiment
        self._stale_by_edit = False            # ... because of an edit (undoing it makes the run current again)
        self.snapshot_times: deque[float] = deque(maxlen=4096)
        self._after_job: list[Any] = []        # what to do when the current job ends
        self._restart_box: QMessageBox | None = None
        self._asked_restart = False
        self._shut_down = False
        self._saved_step = 0                   # the trainer step the last save / open holds
        # Asked before a fresh build replaces a run that trained since it was saved (Train on a
        # finished run, Train after a structural edit, Reset weights); the window installs its
        # Save / Discard / Cancel question. True: go on.
        self.confirm_discard_run: Any = lambda: True

        self.thread = QThread(self)
        self.thread.setObjectName("TrainingThread")
        self.worker: TrainingWorker | ProcessWorker
        if self.child_process:
            self.worker = ProcessWorker()       # lives here; its relay loop runs on the thread
            self.worker.relay.moveToThread(self.thread)
            self.thread.started.connect(self.worker.relay.run)
            self.worker.crashed.connect(self._on_crashed)
        else:
            self.worker = TrainingWorker()
            self.worker.moveToThread(self.thread)
        self._job_build.connect(self.worker.build)
        self._job_train.connect(self.worker.train)
        self._job_step.connect(self.worker.step)
        self._job_refresh.connect(self.worker.refresh)
        self._job_open.connect(self.worker.open_session)
        self.worker.opened.connect(self._on_opened)
        self.worker.open_failed.connect(self._on_open_failed)
        self._open_callbacks: tuple[Any, Any] | None = None
        self._stale_before_open = (False, False)
        self.worker.built.connect(self._on_built)
        self.worker.snapshot.connect(self._on_snapshot)
        self.worker.job_done.connect(self._on_job_done)
        self.worker.failed.connect(self._on_failed)
        self.thread.start()
        dispatcher = QAbstractEventDispatcher.instance(QThread.currentThread())
        if dispatcher is not None:
            self.worker.gate.follow_event_loop(dispatcher)

        self.actions: dict[str, QAction] = {}
        for name, (text, shortcut, tip) in _ACTIONS.items():
            action = QAction(text, self)
            action.setObjectName(f"{name}Action")
            action.setShortcut(QKeySequence(shortcut))
            action.setToolTip(f"{tip} ({shortcut})")
            action.setStatusTip(tip)
            self.actions[name] = action
        self.actions["train"].triggered.connect(self.train)
        self.actions["pause"].triggered.connect(self.pause)
        self.actions["resume"].triggered.connect(self.resume)
        self.actions["stop"].triggered.connect(self.stop)
        self.actions["step"].triggered.connect(self.step)
        self.actions["reset"].triggered.connect(self.reset_weights)
        state.errors_changed.connect(lambda _: self._update_actions())
        state.changed.connect(self._on_experiment_changed)
        self._update_actions()

    # ------------------------------------------------------------------ public API

    @property
    def busy(self) -> bool:
        """A run is in progress or paused (or a job is still being carried out)."""
        return self.mode != IDLE

    @property
    def running(self) -> bool:
        return self.mode == RUNNING

    @property
    def run_superseded(self) -> bool:
        """The run no longer matches the experiment (a structural edit, or a failed run): a save
        now writes the edited experiment with fresh weights, not the run's."""
        trainer = self.trainer
        if trainer is None or self.worker.active.is_set():
            return False
        current = self.state.experiment
        return self.stale or (trainer.experiment.to_dict() != current.to_dict()
                              and not hyperparameter_only_change(trainer.experiment, current, trainer.epoch))

    @property
    def current_step(self) -> int:
        """The run's step as last reported by the worker (0 before any run)."""
        return int(self.buffers.progress.get("step", 0)) if self.buffers.progress else 0

    @property
    def unsaved_steps(self) -> int:
        """Steps trained since the run was last saved or opened: closing, opening another file
        or starting over must ask before they are thrown away."""
        return max(0, self.current_step - self._saved_step)

    def train(self) -> None:
        if self.mode == PAUSED:
            self.resume()
            return
        if self.mode != IDLE or not self.state.valid:
            return
        if self._needs_fresh_trainer():
            if not self._may_replace_run():
                return
            self._build(then_train=True)
        else:
            self._sync_hyperparameters()
            self._start_job(RUNNING, self._job_train)
            self.status.emit("Training…")

    def pause(self) -> None:
        if self.mode == RUNNING and self.trainer is not None:
            self.trainer.pause()           # a thread-safe flag, read by the loop between batches
            self._set_mode(PAUSED)
            self.status.emit("Paused (before the next batch)")

    def resume(self) -> None:
        if self.mode == PAUSED and self.trainer is not None:
            self.trainer.resume()
            self._set_mode(RUNNING)
            self.status.emit("Training…")

    def stop(self) -> None:
        if self.mode in (RUNNING, PAUSED, STEPPING, BUILDING):
            self._after_job.clear()
            self.worker.request_stop()
            if self.trainer is not None:
                self.trainer.resume()
            self._set_mode(STOPPING)
            self.status.emit("Stopping after the current batch…")

    def step(self) -> None:
        if not self.state.valid:
            return
        if self.mode == PAUSED:
            self.worker.request_step()     # served inside the paused run; stays paused
            return
        if self.mode != IDLE:
            return
        if self._needs_fresh_trainer():
            if not self._may_replace_run():
                return
            self._build(then_step=True)
        else:
            self._sync_hyperparameters()
            self._start_job(STEPPING, self._job_step)

    def reset_weights(self) -> None:
        if self.mode != IDLE or not self.state.valid:
            return
        if not self._may_replace_run():
            return
        self._build()
        self.status.emit("Fresh weights drawn from the experiment's initializers")

    def save_session(self, path: Path) -> None:
        """Write the current run (or fresh weights of the current experiment) to ``path``,
        atomically. Raises OSError / SessionError on failure."""
        arrays, state_values, experiment = self._snapshot_state()
        base = self._base_dir()
        extra = {"base_dir": str(Path(base).resolve())} if base else None   # relative data paths resolve here
        members = session_members(experiment, arrays, state_values, extra)
        write_session(Path(path), members)
        # What the file holds is now safe. A save of fresh weights (no run for what the window
        # shows) supersedes the run on screen as well: the user chose to keep the new experiment.
        step = int(state_values.get("step", 0))
        self._saved_step = step if step > 0 else self.current_step
        self.status.emit(f"Saved {Path(path).name}")
        self.session_saved.emit(Path(path))

    def open_session(self, session: Session | None) -> None:
        """Adopt a loaded session's trainer (or forget the run: ``None`` = fresh experiment)."""
        if self.mode != IDLE:
            raise SessionError("stop training before opening another session")
        if session is None:
            self.trainer = None
            self.stale = False
            self._saved_step = 0
            self.buffers.clear()
            self.run_reset.emit()
            self.updated.emit()
            return
        if isinstance(self.worker, ProcessWorker):
            self.stale = False
            self._start_job(BUILDING, self.worker.build_from_session, session)
            return
        try:
            trainer = restore_trainer(session)
        except SessionError:
            raise
        except (SpecError, ValueError, OSError) as exc:
            raise SessionError(f"{session.path or 'session'}: {exc}") from None
        self.trainer = trainer
        self.stale = False
        self._start_job(BUILDING, self._job_build, session.experiment, None, trainer)

    def open_session_file(self, path: Path, on_opened: Any, on_failed: Any = None) -> bool:
        """Load and restore a session on the worker thread (the GUI stays responsive), then call
        ``on_opened(session)`` on the GUI thread — before the run's snapshot is drawn — or
        ``on_failed(message)`` (default: the ``error`` signal); the current run is kept on
        failure. False if a run is busy."""
        if self.mode != IDLE:
            return False
        self._open_callbacks = (on_opened, on_failed)
        self._stale_before_open = (self.stale, self._stale_by_edit)  # put back if the open fails
        self.stale = False
        self.opening.emit(Path(path))
        self.status.emit(f"Opening {Path(path).name}…")
        self._start_job(BUILDING, self._job_open, Path(path))
        return True

    def _on_opened(self, session: Session) -> None:
        callbacks, self._open_callbacks = self._open_callbacks, None
        self.opening.emit(None)
        if callbacks is not None and callbacks[0] is not None:
            callbacks[0](session)

    def _on_open_failed(self, message: str) -> None:
        callbacks, self._open_callbacks = self._open_callbacks, None
        self.stale, self._stale_by_edit = self._stale_before_open  # a failed open changes nothing
        self.opening.emit(None)
        if callbacks is not None and callbacks[1] is not None:
            callbacks[1](message)
        elif not self._shut_down:
            self.error.emit(message)

    def shutdown(self) -> None:
        """Stop any job within one batch and end the worker thread (no Qt thread warnings)."""
        if self._shut_down:
            return
        self._shut_down = True
        self._after_job.clear()
        self.worker.gate.disable()
        if isinstance(self.worker, ProcessWorker):
            self.worker.close()            # the relay ends the child (and reaps it), then returns
        else:
            self.worker.request_stop()
            if self.trainer is not None:
                self.trainer.resume()
        self.thread.quit()
        self.thread.wait()
        self.mode = IDLE

    # ------------------------------------------------------------------ numbers for the status bar / tests

    def snapshots_per_second(self, window: float = 1.0) -> float:
        """Snapshots received in the last ``window`` seconds, per second."""
        now = time.perf_counter()
        return sum(1 for t in self.snapshot_times if now - t <= window) / window

    # ------------------------------------------------------------------ jobs

    def _start_job(self, mode: str, signal: Any, *args: Any) -> None:
        self.worker.prepare()
        self._set_mode(mode)
        signal.emit(*args)

    def _build(self, then_train: bool = False, then_step: bool = False) -> None:
        self.stale = False
        if then_train:
            self._after_job.append(lambda: self._start_job(RUNNING, self._job_train))
        if then_step:
            self._after_job.append(lambda: self._start_job(STEPPING, self._job_step))
        self.status.emit("Building the model and loading the data…")
        self._start_job(BUILDING, self._job_build, self.state.experiment, self._base_dir(), None)

    def _base_dir(self) -> str | None:
        return str(self.state.base_dir) if self.state.base_dir is not None else None

    def _may_replace_run(self) -> bool:
        """Before a fresh build replaces the current run: ask if it holds unsaved training."""
        return self.unsaved_steps == 0 or bool(self.confirm_discard_run())

    def _needs_fresh_trainer(self) -> bool:
        t = self.trainer
        if t is None or self.stale:
            return True
        if t.finished or t.epoch >= t.experiment.training.epochs:
            self.status.emit("The run is complete: training a new model from fresh weights")
            return True
        return self.run_superseded

    def _sync_hyperparameters(self) -> None:
        """Idle only: give the trainer the experiment's learning rate / schedule."""
        t = self.trainer
        if t is not None and not self.worker.active.is_set() and \
                t.experiment.to_dict() != self.state.experiment.to_dict():
            t.set_hyperparameters(self.state.experiment)

    def _on_built(self, trainer: Trainer) -> None:
        self.trainer = trainer

    def _on_snapshot(self, snap: TrainingSnapshot) -> None:
        self.snapshot_times.append(time.perf_counter())
        self.buffers.apply(snap)
        if snap.reset:
            # A new trainer: fresh weights (step 0) or an opened session, whose steps are in its file.
            self._saved_step = self.current_step
            self.run_reset.emit()
        self.updated.emit()

    def _on_job_done(self, reason: str) -> None:
        was = self.mode
        self._set_mode(IDLE)
        if self._shut_down:
            return
        if self._after_job:
            follow = self._after_job.pop(0)
            follow()
            return
        if was in (RUNNING, PAUSED, STOPPING) and reason not in ("built", "step", "refresh"):
            text = {"completed": "Training complete", "stopped": "Training stopped (weights kept; Train continues)",
                    "early_stopping": "Early stopping ended the run"}.get(reason, reason)
            self.status.emit(text)
            if reason.startswith("diverged"):
                self.error.emit(f"Training diverged.\n{reason}")

    def _on_crashed(self, message: str) -> None:
        """The child died (killed, out of memory, a native crash) or would not stop: the window
        stays, the plots keep what arrived, the next Train starts a fresh model."""
        self._after_job.clear()
        self._set_mode(IDLE)
        self.stale = True
        self._stale_by_edit = False
        if not self._shut_down:
            self.status.emit("The training process ended")
            self.crashed.emit(message)

    def _on_failed(self, message: str) -> None:
        self._after_job.clear()
        self._set_mode(IDLE)
        self.stale = True                  # the next Train starts from a fresh model
        self._stale_by_edit = False
        if not self._shut_down:
            self.error.emit(message)
            self.status.emit("Training failed")

    # ------------------------------------------------------------------ experiment edits

    def _on_experiment_changed(self, experiment: Experiment) -> None:
        self._update_actions()
        t = self.trainer
        if self.stale and self._stale_by_edit and t is not None and t.experiment.to_dict() == experiment.to_dict():
            self.stale = self._stale_by_edit = False     # the edit that made the run stale was undone
        if t is None or self.mode == IDLE:
            return
        if self.mode not in (RUNNING, PAUSED):
            return
        if t.experiment.to_dict() == experiment.to_dict():
            return
        if hyperparameter_only_change(t.experiment, experiment, t.epoch):
            self.worker.apply_hyperparameters(experiment)
            self.status.emit(f"Applied from the next batch: learning rate {experiment.learning_rate:g} "
                             f"({experiment.schedule.name} schedule)")
            return
        self.stale = self._stale_by_edit = True
        if self._asked_restart or self._restart_box is not None:
            return
        self._ask_restart()

    def _ask_restart(self) -> None:
        parent = self.parent() if isinstance(self.parent(), QWidget) else None
        box = QMessageBox(QMessageBox.Icon.Question, "Restart training?",
                          "This change needs a new model. Restart training now from fresh weights, "
                          "or keep the current run going (the change applies at the next Train)?",
                          QMessageBox.StandardButton.NoButton, parent)
        box.setObjectName("restartDialog")
        restart = box.addButton("Restart", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Keep running", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(restart)

        def answered() -> None:
            self._restart_box = None
            self._asked_restart = True
            if box.clickedButton() is restart and self.mode in (RUNNING, PAUSED):
                self.stop()
                self._after_job.append(lambda: self._build(then_train=True))
            box.deleteLater()

        box.finished.connect(lambda _: answered())
        self._restart_box = box
        box.open()

    # ------------------------------------------------------------------ saving

    def _snapshot_state(self) -> tuple[dict[str, Any], dict[str, Any], Experiment]:
        """(arrays, state values, experiment) of the run, taken without racing the worker."""
        current = self.state.experiment
        trainer = self.trainer
        if trainer is None or self.run_superseded:
            # Nothing trained for what the window shows: save fresh weights of the experiment.
            fresh = Trainer(current, self._base_dir())
            arrays, values = fresh.state_dict()
            return arrays, values, current
        if isinstance(trainer, RemoteTrainer):
            if not trainer.alive:
                raise OSError("the training process has ended; the last autosave holds the run")
            self._sync_hyperparameters()
            arrays, values, experiment = self.worker.request_state(trainer._child, SAVE_WAIT_SECONDS)
            return arrays, values, parse_experiment(experiment)
        if not self.worker.active.is_set():
            self._sync_hyperparameters()
            arrays, values = trainer.state_dict()
            return arrays, values, trainer.experiment

        done = threading.Event()
        box: dict[str, Any] = {}

        def take(t: Trainer) -> None:
            try:
                box["state"] = (*t.state_dict(), t.experiment)
            except Exception as exc:  # noqa: BLE001
                box["error"] = exc
            finally:
                done.set()

        self.worker.post(take)
        deadline = time.perf_counter() + SAVE_WAIT_SECONDS
        with self.worker.gate.opened():
            while not done.wait(0.01):
                self.worker.serve_requests_if_idle()
                if time.perf_counter() > deadline:
                    raise OSError("the training thread did not reach a batch boundary in time; try again")
        if "error" in box:
            raise OSError(f"could not copy the training state: {box['error']}")
        return box["state"]

    # ------------------------------------------------------------------ actions

    def _set_mode(self, mode: str) -> None:
        if mode != self.mode:
            self.mode = mode
            if mode == RUNNING:
                self._asked_restart = False
            self.mode_changed.emit(mode)
        self._update_actions()

    def _update_actions(self) -> None:
        valid = self.state.valid
        mode = self.mode
        enabled = {
            "train": valid and mode == IDLE,
            "pause": mode == RUNNING,
            "resume": mode == PAUSED,
            "stop": mode in (RUNNING, PAUSED, BUILDING, STEPPING),
            "step": valid and mode in (IDLE, PAUSED),
            "reset": valid and mode == IDLE,
        }
        for name, on in enabled.items():
            self.actions[name].setEnabled(on)
        self.actions["pause"].setVisible(mode != PAUSED)
        self.actions["resume"].setVisible(mode == PAUSED)
