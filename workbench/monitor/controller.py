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
from .ghosts import GhostRuns
from .worker import ProcessWorker, RemoteTrainer, TrainingWorker

SAVE_WAIT_SECONDS = 10.0

# Controller modes.
IDLE, BUILDING, RUNNING, PAUSED, STEPPING, STOPPING = "idle", "building", "running", "paused", "stepping", "stopping"

#: What the status bar says in each mode, until the mode changes (idle: nothing; the event that
#: ended the run is shown for a while as a ``status`` message).
MODE_STATUS = {IDLE: "", BUILDING: "Building the model and loading the data…", RUNNING: "Training…",
               PAUSED: "Paused (before the next batch)", STEPPING: "Training one mini-batch…",
               STOPPING: "Stopping after the current batch…"}

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

    status = Signal(str)               # an event (saved, applied, ended): shown for a few seconds
    state_status = Signal(str)         # what the controller is doing now; "" when idle (replaced at every change)
    error = Signal(str)
    mode_changed = Signal(str)
    updated = Signal()                 # a snapshot arrived (GUI thread): buffers changed
    run_reset = Signal()               # the buffers were cleared for a new trainer
    session_saved = Signal(object)     # Path of a session file just written by save_session
    crashed = Signal(str)              # the training process died (what happened); the buffers are kept
    shutting_down = Signal()           # shutdown() began: work tied to the run (remedy trials) ends with it

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
        self.ghosts = GhostRuns(self)          # the last few runs, kept as faint curves when replaced
        self._run_label = ""                   # what the run on screen is called as a ghost
        self._runs_started = 0
        self.trainer: Trainer | RemoteTrainer | None = None   # owned by the worker while worker.active is set
        self.mode = IDLE
        self.mode_status = ""                   # MODE_STATUS[mode], or what this build / open is for
        self.stale = False                     # the trainer no longer matches the experiment
        self._stale_by_edit = False            # ... because of an edit (undoing it makes the run current again)
        self.snapshot_times: deque[float] = deque(maxlen=4096)
        self._after_job: list[Any] = []        # what to do when the current job ends
        self._restart_box: QMessageBox | None = None
        self._asked_restart = False
        self._shut_down = False
        self._saved_step = 0                   # the trainer step the last save / open holds
        self._build_reason = ""                # said before the building message of the next build
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
                self._build_reason = ""
                return
            self._build(then_train=True)
        else:
            self._sync_hyperparameters()
            self._start_job(RUNNING, self._job_train)

    def pause(self) -> None:
        if self.mode == RUNNING and self.trainer is not None:
            self.trainer.pause()           # a thread-safe flag, read by the loop between batches
            self._set_mode(PAUSED)

    def resume(self) -> None:
        if self.mode == PAUSED and self.trainer is not None:
            self.trainer.resume()
            self._set_mode(RUNNING)

    def stop(self) -> None:
        if self.mode in (RUNNING, PAUSED, STEPPING, BUILDING):
            self._after_job.clear()
            self.worker.request_stop()
            if self.trainer is not None:
                self.trainer.resume()
            self._set_mode(STOPPING)

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
                self._build_reason = ""
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
        self._after_job.append(lambda: self.status.emit("Fresh weights drawn from the experiment's initializers"))
        self._build()

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
            self._keep_as_ghost()
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
        self._start_job(BUILDING, self._job_open, Path(path), status=f"Opening {Path(path).name}…")
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
        self.shutting_down.emit()
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

    def run_state(self) -> tuple[dict[str, Any], dict[str, Any], Experiment] | None:
        """(arrays, state values, experiment) of the run on screen as it trained (not the editor's
        experiment, which may have been edited since): what a branch forks. ``None`` without a
        run; OSError if its training process has ended or a local run is busy."""
        trainer = self.trainer
        if trainer is None:
            return None
        if isinstance(trainer, RemoteTrainer):
            if not trainer.alive:
                raise OSError("the training process of this run has ended; open its last save to branch it")
            arrays, values, experiment = self.worker.request_state(trainer._child, SAVE_WAIT_SECONDS)
            return arrays, values, parse_experiment(experiment)
        if self.worker.active.is_set():
            raise OSError("stop training first: this run trains in the window's own process")
        arrays, values = trainer.state_dict()
        return arrays, values, trainer.experiment

    def train_session(self, session: Session, before: Any = None) -> None:
        """Make ``session`` (a branch built in memory) the run on screen and train it, after
        stopping the current run if one is going; ``before()`` is called just before the new run is
        adopted (the window loads its experiment then). The old run stays as a ghost."""
        def adopt() -> None:
            if before is not None:
                before()
            self.open_session(session)
            self._after_job.append(lambda: self._start_job(RUNNING, self._job_train))
            self.status.emit("Branch: training the new run")

        if self.mode == IDLE:
            adopt()
        else:
            self.stop()
            self._after_job.append(adopt)

    def _keep_as_ghost(self) -> None:
        if self.buffers.size:
            self.ghosts.keep(self.buffers, self._run_label or "run")

    # ------------------------------------------------------------------ numbers for the status bar / tests

    def snapshots_per_second(self, window: float = 1.0) -> float:
        """Snapshots received in the last ``window`` seconds, per second."""
        now = time.perf_counter()
        return sum(1 for t in self.snapshot_times if now - t <= window) / window

    # ------------------------------------------------------------------ jobs

    def _start_job(self, mode: str, signal: Any, *args: Any, status: str | None = None) -> None:
        """Start a job by a queued signal (the thread worker) or a call that queues an order (the
        process worker's ``build_from_session``, which had no way to be started before branches)."""
        self.worker.prepare()
        self._set_mode(mode, status)
        getattr(signal, "emit", signal)(*args)

    def _build(self, then_train: bool = False, then_step: bool = False) -> None:
        self.stale = False
        if then_train:
            self._after_job.append(lambda: self._start_job(RUNNING, self._job_train))
        if then_step:
            self._after_job.append(lambda: self._start_job(STEPPING, self._job_step))
        why, self._build_reason = self._build_reason, ""
        self._start_job(BUILDING, self._job_build, self.state.experiment, self._base_dir(), None,
                        status=why + MODE_STATUS[BUILDING])

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
            self._build_reason = "The run is complete, a new one starts from fresh weights: "
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
        if snap.run is not None:
            self._keep_as_ghost()          # the run on screen is replaced: its curves stay, faint
        self.buffers.apply(snap)
        if snap.run is not None:
            self._runs_started += 1
            trainer = self.trainer
            name = trainer.experiment.name if trainer is not None else "run"
            self._run_label = f"run {self._runs_started}: {name}"
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
            # Asked once this run: say it again, without a question, at every later such edit.
            self.status.emit("That change waits for the next run (Train then starts a new model); "
                             "the running one goes on as it was")
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

    def _set_mode(self, mode: str, status: str | None = None) -> None:
        """Enter ``mode``; the status bar says what it is doing (``status``, or the mode's own
        words) until the next change, so no message outlives the state it described."""
        if mode != self.mode:
            self.mode = mode
            if mode == RUNNING:
                self._asked_restart = False
            self.mode_changed.emit(mode)
        text = MODE_STATUS[mode] if status is None else status
        if text != self.mode_status:
            self.mode_status = text
            self.state_status.emit(text)
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
