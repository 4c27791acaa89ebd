"""Tests for core/data/dataset.py: the Dataset type's invariants and summary."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.dataset import Dataset

# ------------------------------------------------------------------------------------ Dataset


def test_dataset_invariants_and_summary():
    X = np.zeros((3, 4), dtype=np.float32)
    y = np.array([0, 1, 1], dtype=np.int64)
    data = Dataset(X=X, y=y, task="classification", n_classes=2, feature_names=list("abcd"),
                   class_names=["no", "yes"], image_shape=(2, 2), name="toy")
    assert data.n_samples == 3 and data.n_features == 4 and data.n_targets == 0
    assert data.summary() == {
        "name": "toy", "task": "classification", "shape": [3, 4], "n_samples": 3, "n_features": 4,
        "image_shape": [2, 2], "n_classes": 2, "classes": ["no", "yes"], "class_counts": [1, 2],
    }
    assert "toy" in repr(data)
    common = dict(task="classification", n_classes=2, feature_names=list("abcd"), class_names=["no", "yes"],
                  image_shape=None, name="toy")
    with pytest.raises(ValueError, match="X: must be a 2-D float32 array"):
        Dataset(X=X.astype(np.float64), y=y, **common)
    with pytest.raises(ValueError, match="classification labels must be 1-D int64"):
        Dataset(X=X, y=y.astype(np.int32), **common)
    with pytest.raises(ValueError, match="y: must be an array with 3 rows"):
        Dataset(X=X, y=y[:2], **common)
    with pytest.raises(ValueError, match="image_shape"):
        Dataset(X=X, y=y, **{**common, "image_shape": (3, 3)})
    with pytest.raises(ValueError, match="task"):
        Dataset(X=X, y=y, **{**common, "task": "ranking"})


