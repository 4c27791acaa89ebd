"""The book's default configuration must be worth its name: on digits it reaches a test
accuracy at least as high as scikit-learn's MLPClassifier of the same size and epochs."""

import warnings

import numpy as np

from core.presets import default_experiment
from core.training import Trainer

SEEDS = (1, 2, 3)


def test_default_example_beats_mlpclassifier_on_digits():
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    ours, theirs = [], []
    for seed in SEEDS:
        experiment = default_experiment().replace(seed=seed)
        trainer = Trainer(experiment)
        trainer.fit()
        ours.append(trainer.evaluate("test")[1])
        layers = tuple(row.units for row in experiment.model.layers)
        mlp = MLPClassifier(hidden_layer_sizes=layers, max_iter=experiment.training.epochs,
                            batch_size=experiment.training.batch_size, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            # Same split and the same standardized features as ours.
            mlp.fit(trainer.X_train, trainer.y_train)
        theirs.append(mlp.score(trainer.X_test, trainer.y_test))
    assert len(trainer.y_test) > 300
    print(f"test accuracy: ours {np.round(ours, 4)} (mean {np.mean(ours):.4f}), "
          f"MLPClassifier {np.round(theirs, 4)} (mean {np.mean(theirs):.4f})")
    assert np.mean(ours) >= np.mean(theirs)
