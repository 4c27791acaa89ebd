"""The health banner offers only fixes that helped in their trial, says what each does and does
not address, and after a fix is applied says so and what to do next, greying the stale finding."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt

from core.presets import preset_experiment
from core.training import Trainer
from workbench.monitor.banner import HealthBanner, fix_text
from workbench.state import ExperimentState


def exploding_finding() -> dict[str, Any]:
    trainer = Trainer(preset_experiment("exploding"))
    trainer.fit(epochs=None, should_stop=lambda: trainer.step >= 40)
    return next(i.to_dict() for i in trainer.health() if i.kind == "exploding")


def test_tried_fixes_are_shown_with_their_effect_and_applying_one_changes_the_banner(qtbot: Any) -> None:
    state = ExperimentState(preset_experiment("exploding"))
    banner = HealthBanner(state)
    qtbot.addWidget(banner)
    banner.trial_steps, banner.trial_seconds = 60, 60.0
    banner.show()
    finding = exploding_finding()
    with qtbot.waitSignal(banner.trials_finished, timeout=120_000) as done:
        banner.set_issues([finding])
        assert not banner.buttons                      # nothing is offered before it is tried
        assert "Trying the fixes" in banner.trials_label.text()
        assert "Trying the fixes for exploding gradients" in banner.trials_label.text()     # not its kind key
    report = done.args[0]
    assert report is banner.report and report.offered
    assert set(banner.buttons) == {"+".join(t.fix) for t in report.offered}
    text = banner.trials_label.text()
    for trial in report.trials:                         # every trial is listed with its verdict
        assert fix_text(trial.fix) in text
    for trial in report.rejected:
        assert "✗ <b>" + fix_text(trial.fix) in text
    assert "Exploding gradients in dense_0" in banner.label.text() and "gray" not in banner.label.text()

    key = "+".join(report.offered[0].fix)
    button = banner.buttons[key]
    assert "What it does:" in button.toolTip() and "In its trial:" in button.toolTip()
    before = state.data
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert state.data != before
    assert banner.applied_label.isVisible() and "Fix applied" in banner.applied_label.text()
    assert "Retrain to see its effect" in banner.applied_label.text()
    assert "gray" in banner.label.text() and "before the fix" in banner.label.text()
    assert not button.isEnabled()
    # the same (stale) finding keeps arriving until the next run: it stays greyed, nothing is re-tried
    banner.set_issues([finding])
    assert banner.stale and "gray" in banner.label.text() and banner.report is report
    # a new run (no findings, or findings from before the old step) forgets the applied fix
    banner.set_issues([])
    assert not banner.stale and not banner.applied_label.isVisible() and banner.isHidden()
    banner.runner.shutdown()


def test_clipping_is_explained_in_the_books_terms() -> None:
    from workbench.monitor.banner import scope
    assert "does not change why the gradients grow" in scope(("clip",))
    assert "recurrent" in scope(("clip",))
    assert fix_text(("leaky", "learning_rate", "learning_rate")) == "Leaky ReLU + learning rate ÷ 4"


def test_a_finding_on_a_selu_network_says_which_condition_of_self_normalization_it_breaks(qtbot: Any) -> None:
    experiment = preset_experiment("selu")
    data = experiment.to_dict()
    for row in data["model"]["layers"]:
        row["dropout_type"] = "standard"
    state = ExperimentState(experiment)
    banner = HealthBanner(state)
    qtbot.addWidget(banner)
    finding = {"kind": "stalled", "layer": 0, "layer_name": "dense_0", "step": 50,
               "message": "the loss has not improved", "remedies": []}
    banner.set_issues([finding])
    assert "SELU network" not in banner.label.text()          # the preset meets the conditions
    assert state.replace_data(data, "ordinary dropout") is None
    banner.set_issues([finding])
    assert "SELU network: it normalizes itself only with alpha dropout instead of ordinary dropout" \
        in banner.label.text()
    banner.runner.shutdown()


def test_applying_a_fix_says_what_its_trial_trained_a_retrain_or_the_run_going_on(qtbot: Any) -> None:
    """A fix tried from the start is retrained to see its effect; a rate change tried as the run
    going on from its step applies from the next batch, and the banner says so instead of asking
    for a retrain its evidence did not measure."""
    from core.engine.diagnostics import HealthIssue
    from core.remedies import RemedyReport, Trial

    finding = {"kind": "exploding", "layer": 0, "layer_name": "dense_0", "step": 60,
               "message": "exploding gradients: the gradient norm of dense_0 is 800× larger", "remedies": []}
    for from_start, said in ((False, "applies to the run from its next batch"), (True, "Retrain to see its effect")):
        state = ExperimentState(preset_experiment("exploding"))
        banner = HealthBanner(state)
        qtbot.addWidget(banner)
        banner.set_issues([finding])                 # names no remedy: nothing is tried
        base = Trial((), from_start, 0 if from_start else 60, 100, 0.5, 800.0, 2.5, 2.5, False)
        rate = Trial(("learning_rate",), from_start, base.start_step, 100, 0.5, 10.0, 2.5, 1.0, False, "helps",
                     "loss 1 after 100 steps (unchanged run 2.5)")
        banner._on_trials(RemedyReport(HealthIssue.from_dict(finding), {from_start: base}, (rate,)))
        qtbot.mouseClick(banner.buttons["learning_rate"], Qt.MouseButton.LeftButton)
        text = banner.applied_label.text()
        assert said in text and ("Retrain" in text) is from_start
        assert ("from step 60" in text) is not from_start
        banner.runner.shutdown()
