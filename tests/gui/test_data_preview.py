"""The Data panel with image data: the IDX pair's second file chooser, an image folder's size,
the grid of sample images per class, and a book data set downloaded from a local mirror set in
the preferences, with its progress, Cancel and Reload. Nothing here touches the network."""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDockWidget,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QWidget,
)

from core.data import book
from core.data.download import CACHE_VARIABLE, MIRROR_VARIABLE
from workbench.editor.data_panel import DataPanel, SampleGrid, labels_beside
from workbench.editor.dataset_info import DataInfo, sample_images
from workbench.sessions import preferences

from ..core.data.book_support import mnist_like, remote_files, serve
from ..core.data.support import write_idx_pair, write_image_folder
from .monitor_support import make_window_fixture  # noqa: F401 (fixture)


def show_data(window: Any) -> DataPanel:
    dock = next(d for d in window.findChildren(QDockWidget) if d.windowTitle() == "Data")
    dock.raise_()
    QApplication.processEvents()
    return window.findChild(DataPanel)


def preview_text(window: Any) -> str:
    return window.findChild(QLabel, "dataPreview").text()


def grid_rows(window: Any) -> list[str]:
    grid = window.findChild(SampleGrid)
    return [name.text() for name, _ in grid.rows] if grid.isVisible() else []


def test_sample_images_are_the_first_of_each_class_stretched_to_bytes():
    from core.data import Dataset

    X = np.arange(5 * 4, dtype=np.float32).reshape(5, 4)
    data = Dataset(X=X, y=np.array([1, 0, 1, 1, 0]), task="classification", n_classes=3,
                   feature_names=list("abcd"), class_names=["x", "y", "z"], image_shape=(2, 2), name="t")
    grid = sample_images(data, per_class=2)
    assert grid.shape == (3, 2, 2, 2) and grid.dtype == np.uint8
    np.testing.assert_array_equal(grid[0, 0].reshape(-1), [0, 85, 170, 255])   # row 1: 4..7 stretched
    assert not grid[2].any()                                                    # class z has no images
    flat = Dataset(X=X, y=np.array([1, 0, 1, 1, 0]), task="classification", n_classes=2,
                   feature_names=list("abcd"), class_names=["x", "y"], image_shape=None, name="t")
    assert sample_images(flat) is None


def test_an_idx_pair_gets_a_labels_file_row_and_a_preview_grid(make_window, qtbot, tmp_path):
    images, labels, _, _ = write_idx_pair(tmp_path, n=40, shape=(7, 7), n_classes=4)
    window = make_window()
    panel = show_data(window)
    assert panel.labels_row.isHidden()
    assert labels_beside(str(images)) == str(labels)
    panel._file_chosen("idx", str(images))           # the images file chosen: its labels file is found beside it
    data = window.state.experiment.data
    assert (data.source, data.path, data.labels_path) == ("idx", str(images), str(labels))
    assert not panel.labels_row.isHidden() and panel.labels_edit.text() == str(labels)
    qtbot.waitUntil(lambda: "40 samples × 49 features" in preview_text(window), timeout=10_000)
    assert "images 7×7" in preview_text(window)
    assert grid_rows(window) == ["0", "1", "2", "3"]
    other = tmp_path / "other"
    other.mkdir()
    _, other_labels, _, _ = write_idx_pair(other, n=40, shape=(7, 7), n_classes=2, seed=1)
    assert panel.use_labels_file(str(other_labels)) is None
    qtbot.waitUntil(lambda: grid_rows(window) == ["0", "1"], timeout=10_000)
    window.undo_action.trigger()
    assert window.state.experiment.data.labels_path == str(labels)
    window.state.undo_stack.setClean()


def test_an_idx_images_file_without_labels_beside_it_asks_for_them(make_window, qtbot, tmp_path):
    images, labels, _, _ = write_idx_pair(tmp_path, n=20)
    alone = tmp_path / "alone"
    alone.mkdir()
    moved = alone / "pictures.gz"
    images.rename(moved)
    window = make_window()
    panel = show_data(window)
    panel._file_chosen("idx", str(moved))
    dialog = panel.file_dialog
    assert dialog is not None and dialog.objectName() == "labelsFileDialog" and dialog.isVisible()
    assert window.state.experiment.data.source == "moons"      # nothing changes before the labels are chosen
    dialog.fileSelected.emit(str(labels))
    data = window.state.experiment.data
    assert (data.source, data.path, data.labels_path) == ("idx", str(moved), str(labels))
    window.state.undo_stack.setClean()


def test_an_image_folder_shows_its_size_parameter_and_a_grid_of_its_classes(make_window, qtbot, tmp_path):
    write_image_folder(tmp_path / "photos", {"cat": 5, "dog": 4, "owl": 3})
    window = make_window()
    panel = show_data(window)
    assert panel.use_file("image_folder", str(tmp_path / "photos")) is None
    assert panel.path_caption.text() == "Folder"
    qtbot.waitUntil(lambda: "12 samples × 784 features" in preview_text(window), timeout=10_000)
    assert grid_rows(window) == ["cat", "dog", "owl"]
    QApplication.processEvents()
    assert [w for w in window.findChildren(QWidget, "data.params.size") if not w.isHidden()], "no size field"
    assert [w for w in window.findChildren(QWidget, "data.params.grayscale") if not w.isHidden()]
    assert panel.source.write_param("size", 10) is None
    assert dict(window.state.experiment.data.params) == {"size": 10}
    qtbot.waitUntil(lambda: "12 samples × 100 features" in preview_text(window), timeout=10_000)
    window.state.undo_stack.setClean()


def test_moons_shows_no_grid(make_window, qtbot):
    window = make_window()
    show_data(window)
    qtbot.waitUntil(lambda: "samples × 2 features" in preview_text(window), timeout=10_000)
    assert grid_rows(window) == []


# ----------------------------------------------------------------------------- the book's data sets


@pytest.fixture
def fashion_files(monkeypatch, tmp_path):
    """Fashion-MNIST as small generated files (digests patched), an empty cache, no mirror set."""
    files, _ = mnist_like(300, 60)
    monkeypatch.setattr(book.FashionMNIST, "files", remote_files(files))
    monkeypatch.setenv(CACHE_VARIABLE, str(tmp_path / "cache"))
    monkeypatch.delenv(MIRROR_VARIABLE, raising=False)
    yield files
    preferences._applied[0] = None


def set_mirror(window: Any, qtbot: Any, url: str) -> None:
    window.sessions.download_action.trigger()
    dialog = window.sessions.download_dialog
    qtbot.waitUntil(dialog.isVisible)
    dialog.findChild(QLineEdit, "mirrorUrl").setText(url)
    dialog.accept()


def test_fashion_mnist_from_a_mirror_preference_shows_progress_cancel_retry_and_the_grid(
        make_window, qtbot, tmp_path, monkeypatch, fashion_files):
    # The worker is held at its first progress report until Cancel has been clicked.
    held = threading.Event()
    reached = threading.Event()
    real_fetch_all = book.FashionMNIST.fetch_all
    holding = [True]

    def watched_fetch_all(self: Any, progress: Any) -> Any:
        def hook(fraction: float) -> Any:
            if holding[0] and not reached.is_set():
                progress(fraction)      # shown in the window, then held until Cancel was clicked
                reached.set()
                held.wait(20)
            return progress(fraction)

        return real_fetch_all(self, hook)

    monkeypatch.setattr(book.FashionMNIST, "fetch_all", watched_fetch_all)
    window = make_window()
    panel = show_data(window)
    qtbot.waitUntil(lambda: "samples × 2 features" in preview_text(window), timeout=10_000)
    progress = window.findChild(QProgressBar, "dataLoadProgress")
    info = window.findChild(DataInfo)
    with serve({}) as (empty_url, _), serve(fashion_files) as (url, log):
        # a mirror without the files: one clear error in the preview, and Reload is offered
        set_mirror(window, qtbot, empty_url)
        assert os.environ[MIRROR_VARIABLE] == empty_url
        holding[0] = False
        field = window.findChild(QComboBox, "data.source")
        field.setCurrentText("fashion_mnist")
        assert window.state.experiment.data.source == "fashion_mnist"
        qtbot.waitUntil(lambda: "HTTP 404" in preview_text(window), timeout=10_000)
        assert "\n" not in info.error and window.findChild(QPushButton, "reloadData").isVisible()
        assert grid_rows(window) == []
        # the right mirror, then Reload: the download's progress shows, and Cancel stops it
        set_mirror(window, qtbot, url)
        holding[0] = True
        qtbot.mouseClick(window.findChild(QPushButton, "reloadData"), Qt.MouseButton.LeftButton)
        assert reached.wait(10)
        qtbot.waitUntil(lambda: progress.isVisible() and progress.maximum() == 1000 and progress.value() > 0,
                        timeout=10_000)
        assert "Downloading fashion_mnist" in preview_text(window)
        qtbot.mouseClick(window.findChild(QPushButton, "cancelDataLoad"), Qt.MouseButton.LeftButton)
        held.set()
        assert not progress.isVisible() and "cancelled" in preview_text(window)
        qtbot.waitUntil(lambda: not info.running, timeout=10_000)
        cache = tmp_path / "cache" / "datasets"
        assert not any((cache / name).exists() for name in fashion_files)   # nothing unverified kept
        # Reload retries and finishes: the published split's 360 images and a grid of the ten classes
        holding[0] = False
        qtbot.mouseClick(window.findChild(QPushButton, "reloadData"), Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: "360 samples × 784 features" in preview_text(window), timeout=20_000)
        assert grid_rows(window) == list(book.FASHION_MNIST_CLASSES)
        assert all((cache / name).is_file() for name in fashion_files)
        assert {path.rsplit("/", 1)[-1] for path, status, _ in log if status == 200} >= set(fashion_files)
    assert panel.isVisible()


def test_a_mirror_set_outside_the_app_wins_over_the_preference(make_window, qtbot, monkeypatch, fashion_files):
    monkeypatch.setenv(MIRROR_VARIABLE, "http://127.0.0.1:9/outside")
    window = make_window()
    window.settings.setValue(preferences.MIRROR_KEY, "http://127.0.0.1:9/preference")
    set_mirror(window, qtbot, "http://127.0.0.1:9/preference")
    assert os.environ[MIRROR_VARIABLE] == "http://127.0.0.1:9/outside"
    window.sessions.download_action.trigger()
    dialog = window.sessions.download_dialog
    assert dialog.findChild(QLabel, "mirrorOverridden").isVisibleTo(dialog)
    dialog.findChild(QLineEdit, "mirrorUrl").setText("ftp://nowhere")
    dialog.accept()
    assert dialog.isVisible() and "http:// or https://" in dialog.findChild(QLabel, "mirrorError").text()
    dialog.reject()
    # without the outside value, a new start of the app applies the stored preference
    monkeypatch.delenv(MIRROR_VARIABLE)
    preferences.apply_mirror(window.settings)
    assert os.environ[MIRROR_VARIABLE] == "http://127.0.0.1:9/preference"
    window.settings.setValue(preferences.MIRROR_KEY, "")
    preferences.apply_mirror(window.settings)
    assert MIRROR_VARIABLE not in os.environ
