import json

import numpy as np
import pytest

from spaceship_utils.plotting.style import COLUMN_INCHES
from spaceship_utils.training.runs import (
    RunDirectoryError,
    append_history_row,
    compare_runs,
    config_changes,
    copy_run_record,
    read_config,
    read_history,
)


def _fake_run(path, options, scores, schedule="cosine"):
    path.mkdir(parents=True)
    config = {"task": "detector", "schedule": schedule, "workers": 1, "detector_options": options}
    (path / "config.json").write_text(json.dumps(config))
    for epoch, score in enumerate(scores):
        append_history_row(
            path / "history.csv",
            {
                "epoch": epoch,
                "loss": 1.0 / (epoch + 1),
                "val_ap07": score,
                "images": 1000.0 * (epoch + 1),
                "seconds": 10.0 * (epoch + 1),
                "images_per_second": 100.0,
            },
        )
    return path


def test_config_changes_name_what_differs_from_the_reference():
    reference = {"schedule": "cosine", "workers": 1, "detector_options": {"stride": 8}}
    other = {
        "schedule": "constant",
        "workers": 2,
        "detector_options": {"stride": 8, "regression_radius": 0},
    }
    assert config_changes(other, reference) == "regression_radius=0, schedule=constant"
    assert config_changes(reference, reference) == "-"


def test_compare_runs_reads_each_run_directory(tmp_path):
    runs = {
        "final": _fake_run(tmp_path / "a", {"stride": 8}, [0.1, 0.5]),
        "radius0": _fake_run(
            tmp_path / "b", {"stride": 8, "regression_radius": 0}, [0.2, 0.3, 0.25]
        ),
    }
    lines = compare_runs(runs, "val_ap07", reference="final").splitlines()
    assert lines[0].split()[:3] == ["run", "changes", "images"]
    assert lines[2].split() == ["final", "-", "2,000", "0.5000", "+0.0", "0.5000"]
    assert lines[3].split() == [
        *("radius0", "regression_radius=0", "3,000", "0.2500", "-25.0", "0.3000")
    ]
    costs = {"final": (155_784, 0.1934), "radius0": (155_784, 0.1934)}
    with_costs = compare_runs(runs, "val_ap07", reference="final", costs=costs).splitlines()
    assert with_costs[0].split()[:4] == ["run", "changes", "params", "GFLOPs"]
    assert with_costs[2].split()[2:4] == ["155,784", "0.193"]
    with pytest.raises(ValueError, match="costs name runs"):
        compare_runs(runs, "val_ap07", reference="final", costs={"final": (1, 0.1)})
    with pytest.raises(ValueError, match="reference run 'other'"):
        compare_runs(runs, "val_ap07", reference="other")
    by_loss = compare_runs(runs, "loss", reference="final", higher_is_better=False)
    assert by_loss.splitlines()[3].split()[-1] == "0.3333"  # the lowest loss, epoch 3
    with pytest.raises(ValueError, match="no 'val_accuracy' column"):
        compare_runs(runs, "val_accuracy", reference="final")


def test_a_run_record_copies_config_and_history_only(tmp_path):
    run = _fake_run(tmp_path / "run", {"stride": 8}, [0.1])
    (run / "checkpoint.npz").write_bytes(b"big")
    copied = copy_run_record(run, tmp_path / "record")
    assert sorted(p.name for p in copied.iterdir()) == ["config.json", "history.csv"]
    assert read_config(copied) == read_config(run)
    np.testing.assert_array_equal(read_history(copied / "history.csv")["val_ap07"], [0.1])
    with pytest.raises(RunDirectoryError, match="not a training run"):
        read_config(tmp_path)


def test_run_comparison_figure_draws_one_curve_per_run(tmp_path):
    from spaceship_utils.plotting.detection import plot_run_comparison

    histories = {
        name: read_history(_fake_run(tmp_path / name, {}, [0.1, 0.4, 0.6]) / "history.csv")
        for name in ("final", "other")
    }
    fig = plot_run_comparison(histories, "val_ap07", label="validation AP@0.7")
    by_images, by_minutes = fig.axes
    assert len(by_images.lines) == 2 and len(by_minutes.lines) == 2
    np.testing.assert_allclose(by_images.lines[0].get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(by_minutes.lines[0].get_xdata(), [10 / 60, 20 / 60, 30 / 60])
    # One legend, the figure's, under the panels; the figure fits the book's column.
    (legend,) = fig.legends
    assert [text.get_text() for text in legend.get_texts()] == ["final", "other"]
    assert by_images.get_legend() is None and by_minutes.get_legend() is None
    assert fig.get_size_inches()[0] <= COLUMN_INCHES
    with pytest.raises(ValueError, match="lacks"):
        plot_run_comparison({"bad": {"val_ap07": [0.1]}}, "val_ap07")
    only_images = plot_run_comparison(histories, "val_ap07", by_time=False)
    assert len(only_images.axes) == 1 and len(only_images.axes[0].lines) == 2


def test_a_history_keeps_its_columns_and_drops_a_line_cut_short(tmp_path):
    path = _fake_run(tmp_path / "run", {}, [0.1, 0.2]) / "history.csv"
    with open(path, "a") as handle:
        handle.write("2,0.33,0.3")  # killed while writing epoch 2
    row = {
        "epoch": 2,
        "loss": 0.3,
        "val_ap07": 0.3,
        "images": 3000.0,
        "seconds": 30.0,
        "images_per_second": 100.0,
    }
    append_history_row(path, row)
    history = read_history(path)
    assert history["val_ap07"] == [0.1, 0.2, 0.3]
    with pytest.raises(RunDirectoryError, match="another kind of run"):
        append_history_row(path, {"epoch": 3, "val_loss": 0.1})


def test_an_unreadable_checkpoint_is_named(tmp_path):
    from spaceship_utils.training.runs import load_checkpoint, save_checkpoint

    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, [np.ones(3)], [np.zeros(2)], {"step": 4})
    weights, optimizer, state = load_checkpoint(path)
    assert state == {"step": 4} and weights[0].tolist() == [1, 1, 1]
    for broken in (path.read_bytes()[:50], b""):
        path.write_bytes(broken)
        with pytest.raises(RunDirectoryError, match=f"checkpoint {path} is unreadable"):
            load_checkpoint(path)


def test_the_raw_weights_history_replaces_the_averaged_validation():
    from spaceship_utils.training.runs import raw_weights_history

    history = {"loss": [2.0], "val_ap07": [0.6], "raw_val_ap07": [0.5], "images": [32.0]}
    assert raw_weights_history(history) == {"loss": [2.0], "images": [32.0], "val_ap07": [0.5]}
    with pytest.raises(ValueError, match="did not average"):
        raw_weights_history({"loss": [2.0], "val_ap07": [0.6]})
