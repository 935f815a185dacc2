"""Tests of the figures of chapters 4-8 and 11: samples with boxes, histories, scores,
galleries, outline fits."""

import io
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from spaceship_utils.core.geometry import box_corners
from spaceship_utils.plotting.evaluation import (
    plot_gallery,
    plot_iou_histogram,
    plot_score_by_group,
)
from spaceship_utils.plotting.samples import draw_intro_figure, plot_sample_grid, plot_task
from spaceship_utils.plotting.style import draw_box
from spaceship_utils.plotting.training import plot_training_history
from tests.helpers import generated


@pytest.fixture(scope="module")
def ships():
    return generated(5, seed=3, ships_only=True)


def test_a_box_is_a_closed_outline_with_a_nose_arrow_and_nan_draws_nothing(ships):
    _, labels = ships
    fig, ax = plt.subplots()
    draw_box(ax, labels[0], "red")
    line = ax.lines[0]
    assert len(line.get_xdata()) == 5 and line.get_xdata()[0] == line.get_xdata()[-1]
    assert len(ax.texts) == 1  # the annotation holding the arrow
    draw_box(ax, np.full(5, np.nan), "red")
    assert len(ax.lines) == 1


def test_sample_grid_hides_unused_panels_and_draws_both_boxes(ships):
    images, labels = ships
    fig = plot_sample_grid(images, labels, labels + 1, titles=list("abcde"), columns=4)
    visible = [ax for ax in fig.axes if ax.axison]
    assert len(fig.axes) == 8 and len(visible) == 5
    assert [ax.get_title() for ax in visible] == list("abcde")
    assert all(len(ax.lines) == 2 for ax in visible)


def test_iou_histogram_leaves_out_nan_and_counts_each_series():
    fig = plot_iou_histogram({"a": np.array([0.1, 0.9, np.nan]), "b": np.array([0.5])})
    labels = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert labels == ["a (n = 2)", "b (n = 1)"]


def test_training_history_draws_validation_dashed_and_names_the_x_axis():
    history = {"loss": [1.0, 0.5, 0.2], "val_loss": [1.2, 0.6, 0.4]}
    fig = plot_training_history(history, x_label="step")
    ax = fig.axes[0]
    assert [line.get_linestyle() for line in ax.lines] == ["-", "--"]
    assert ax.get_xlabel() == "step" and ax.get_yscale() == "log"
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [1, 2, 3])


def test_score_by_group_leaves_out_the_no_ship_row():
    rows = [
        {"group": "small", "samples": 10, "score": 0.5},
        {"group": "no ship", "samples": 3, "score": 0.0},
    ]
    fig = plot_score_by_group({"size": rows})
    ax = fig.axes[0]
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["small"]
    assert ax.patches[0].get_height() == 0.5


def test_score_by_group_draws_the_overall_score_and_ends_its_axis_above_the_bars():
    rows = [{"group": name, "samples": 100, "score": 0.4} for name in ("small", "large")]
    fig = plot_score_by_group({"size": rows}, overall=0.41)
    ax = fig.axes[0]
    assert [line.get_ydata()[0] for line in ax.lines if line.get_linestyle() == "--"] == [0.41]
    assert ax.get_ylim() == (0.0, 0.6)  # 0.4 plus its error, rounded up, plus a tenth
    assert "dashed: all samples (0.410)" in fig.texts[0].get_text()
    rows = [{"group": "small", "samples": 100, "score": 0.97}]
    assert plot_score_by_group({"size": rows}).axes[0].get_ylim() == (0.0, 1.0)


def test_score_by_group_ticks_leave_the_panel_title_s_word_out():
    names = ["yaw 0-90°", "yaw 90-180°"]
    rows = [{"group": name, "samples": 10, "score": 0.5} for name in names]
    ax = plot_score_by_group({"yaw": rows}).axes[0]
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["0-90°", "90-\n180°"]
    assert ax.get_title() == "by yaw"


def test_gallery_titles_carry_the_iou_and_an_empty_gallery_says_so(ships):
    images, labels = ships
    fig = plot_gallery(list(images[:2]), list(labels[:2]), list(labels[:2]), [0.91, 0.12], "good")
    assert [ax.get_title() for ax in fig.axes[:2]] == ["IoU 0.91", "IoU 0.12"]
    empty = plot_gallery([], [], [], [], "ugly")
    assert "no sample fell in this range" in empty.axes[0].texts[0].get_text()


def test_training_history_can_be_drawn_against_training_images():
    history = {"loss": [1.0, 0.5], "val_loss": [1.2, 0.6], "images": [8000.0, 16000.0]}
    ax = plot_training_history(history, x_axis="images").axes[0]
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [8.0, 16.0])
    assert "thousands" in ax.get_xlabel()
    with pytest.raises(ValueError, match="images"):
        plot_training_history({"loss": [1.0]}, x_axis="images")


def test_the_outline_figure_shows_image_and_log_ratios_for_each_ship(ships):
    from spaceship_utils.detection.outline_fit import fit_outlines, log_ratio_maps
    from spaceship_utils.plotting.detection import plot_outline_fits

    images, labels = ships
    starts = labels[:3] + [2.0, -1.0, 0.05, 1.0, -2.0]
    fits = fit_outlines(images[:3], starts)
    fig = plot_outline_fits(
        images[:3], log_ratio_maps(images[:3]), labels[:3], starts, fits.boxes, fits.corners
    )
    panels = [ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]
    assert len(panels) == 6  # image and log ratios, three ships
    assert all(ax.get_title().startswith("IoU ") for ax in panels[:3])
    # every panel draws the fitted outline, closed: five points for four corners
    assert all(any(len(line.get_xdata()) == 5 for line in ax.lines) for ax in panels)
    with pytest.raises(ValueError, match="at least one image"):
        plot_outline_fits(
            images[:0], images[:0], labels[:0], labels[:0], labels[:0], np.zeros((0, 4, 2))
        )


def test_the_line_free_figure_shows_lines_and_both_fits_for_each_image(ships):
    from spaceship_utils.detection.line_search import find_lines, line_free_log_ratios
    from spaceship_utils.detection.outline_fit import fit_outlines_to_maps, log_ratio_maps
    from spaceship_utils.plotting.detection import plot_line_free_fits

    images, labels = ships
    plain, free = log_ratio_maps(images[:2]), line_free_log_ratios(images[:2])
    fits = [fit_outlines_to_maps(maps, labels[:2]) for maps in (plain, free)]
    lines = [find_lines(image) for image in images[:2]]
    fig = plot_line_free_fits(images[:2], labels[:2], lines, plain, free, fits, ["one", "two"])
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 6  # image, log ratios, line-free log ratios; two rows
    assert [panels[0].get_title(), panels[3].get_title()] == ["one", "two"]
    assert panels[2].get_title() == f"lines made neutral: L = {fits[1].log_ratios[0]:.0f}"
    assert len(panels[0].lines) == len(lines[0]) + 1  # one segment per line found, the box
    assert all(len(ax.lines[0].get_xdata()) == 5 for ax in panels[1:3])  # a closed outline
    with pytest.raises(ValueError, match="one box, one title and one set of lines per image"):
        plot_line_free_fits(images[:2], labels[:2], lines, plain, free, fits, ["only one"])


def test_the_task_figure_zooms_on_the_box_and_frames_it_on_the_image(ships):
    images, labels = ships
    fig = plot_task(images[0], images[0], labels[0])
    whole, zoom = fig.axes[:2]
    x, y, _, width, height = labels[0]
    reach = np.hypot(width, height) / 2 + 6
    np.testing.assert_allclose(zoom.get_xlim(), (x - reach, x + reach))
    np.testing.assert_allclose(zoom.get_ylim(), (y + reach, y - reach))  # rows grow down
    assert whole.get_xlim() == (-0.5, 199.5)  # the whole image


def test_gallery_panels_say_which_kind_of_miss_they_show(ships):
    images, labels = ships
    empty = np.full(5, np.nan)
    fig = plot_gallery(
        images[:3],
        [labels[0], labels[1], empty],
        [labels[0], empty, labels[2]],
        [0.95, 0.0, 0.0],
        title="t",
    )
    titles = [ax.get_title() for ax in fig.axes if ax.axison]
    assert titles == ["IoU 0.95", "ship missed: no box", "box, but no ship"]


def test_training_curves_mark_the_kept_epoch_and_a_reference_level():
    history = {
        "loss": [1.0, 0.5, 0.4],
        "val_loss": [0.9, 0.6, 0.7],
        "accuracy": [0.7, 0.8, 0.9],
        "val_accuracy": [0.75, 0.85, 0.8],
        "images": [8000, 16000, 24000],
    }
    fig = plot_training_history(
        history,
        ("loss", "accuracy"),
        x_axis="images",
        kept=2,
        levels={"accuracy": (0.8, "always 'ship'")},
    )
    loss, accuracy = fig.axes
    kept_lines = [line for line in accuracy.lines if line.get_label() == "kept epoch"]
    assert kept_lines and kept_lines[0].get_xdata()[0] == 16.0  # thousands of images
    assert [
        line.get_ydata()[0] for line in accuracy.lines if line.get_label() == "always 'ship'"
    ] == [0.8]
    colours = {
        (ax, line.get_label()): line.get_color() for ax in (loss, accuracy) for line in ax.lines
    }
    assert (
        colours[(loss, "validation")]
        == colours[(accuracy, "validation")]
        != colours[(loss, "training")]
    )
    assert accuracy.get_ylabel() == "accuracy" and loss.get_ylabel() == "loss"
    # One legend, below the panels, with each line once: none on the curves themselves.
    assert loss.get_legend() is None and accuracy.get_legend() is None
    (legend,) = fig.legends
    labels = [text.get_text() for text in legend.get_texts()]
    assert labels == ["training", "validation", "kept epoch", "always 'ship'"]


INTRO_FIGURE = Path(__file__).resolve().parents[1] / "book" / "_static" / "task.jpg"


def test_the_introduction_shows_what_draw_intro_figure_draws():
    from PIL import Image

    buffer = io.BytesIO()
    draw_intro_figure().savefig(
        buffer, format="jpeg", bbox_inches="tight", pil_kwargs={"quality": 75}
    )
    drawn = np.asarray(Image.open(buffer).convert("L"), dtype=np.float64)
    committed = np.asarray(Image.open(INTRO_FIGURE).convert("L"), dtype=np.float64)
    regenerate = (
        'redraw it: python -c "from spaceship_utils.plotting.samples import '
        "draw_intro_figure; draw_intro_figure().savefig('book/_static/task.jpg', "
        "bbox_inches='tight', pil_kwargs={'quality': 75})\""
    )
    assert drawn.shape == committed.shape, regenerate
    assert np.abs(drawn - committed).mean() < 2.0, regenerate  # JPEG noise is well below


def test_a_zoomed_panel_frames_both_boxes_and_a_panel_without_one_keeps_the_image(ships):
    images, labels = ships
    far = labels[1] + [40.0, 0, 0, 0, 0]
    empty = np.full(5, np.nan)
    fig = plot_sample_grid(
        images[:2], np.stack([labels[0], empty]), np.stack([far, empty]), zoom=True
    )
    first, second = fig.axes[:2]
    corners = np.concatenate([box_corners(labels[0][None])[0], box_corners(far[None])[0]])
    (left, right), (bottom, top) = first.get_xlim(), first.get_ylim()
    assert left < corners[:, 0].min() and right > corners[:, 0].max()
    assert top < corners[:, 1].min() and bottom > corners[:, 1].max()
    assert right - left == pytest.approx(bottom - top)  # a square: the ship keeps its shape
    assert second.get_xlim() == (-0.5, 199.5)
    assert first.patch.get_hatch() and not second.patch.get_hatch()  # beyond the edge


def test_the_pipeline_map_highlights_the_chapter_s_own_stages():
    from spaceship_utils.plotting.pipeline import NEW_COLOUR, PIPELINE_STAGES, plot_pipeline
    from spaceship_utils.plotting.style import COLUMN_INCHES

    fig = plot_pipeline(11)
    assert fig.get_size_inches()[0] <= COLUMN_INCHES
    from matplotlib.patches import FancyBboxPatch

    boxes = [patch for patch in fig.axes[0].patches if isinstance(patch, FancyBboxPatch)]
    assert len(boxes) == len(PIPELINE_STAGES) + 2  # and the image, and the answer
    faces = [patch.get_facecolor() for patch in boxes]
    new = [face for face in faces if face == plt.matplotlib.colors.to_rgba(NEW_COLOUR)]
    assert len(new) == sum(chapter == 11 for _, chapter in PIPELINE_STAGES) == 1
    with pytest.raises(ValueError, match="7-12"):
        plot_pipeline(6)


def _highlighted_labels(chapter: int) -> list[str]:
    from matplotlib.patches import FancyBboxPatch

    from spaceship_utils.plotting.pipeline import NEW_COLOUR, plot_pipeline

    ax = plot_pipeline(chapter).axes[0]
    boxes = [patch for patch in ax.patches if isinstance(patch, FancyBboxPatch)]
    labels = [text for text in ax.texts if not text.get_text().startswith("ch. ")][: len(boxes)]
    new = plt.matplotlib.colors.to_rgba(NEW_COLOUR)
    return [
        text.get_text()
        for box, text in zip(boxes, labels, strict=True)
        if box.get_facecolor() == new
    ]


def test_the_pipeline_map_grows_by_one_stage_and_says_what_its_colours_mean():
    from spaceship_utils.plotting.pipeline import plot_pipeline

    assert _highlighted_labels(7) == ["detector"]
    assert _highlighted_labels(8) == ["detector"]  # chapter 8 studies chapter 7's stage
    assert [len(_highlighted_labels(chapter)) for chapter in (9, 10, 11)] == [1, 1, 1]
    assert _highlighted_labels(12) == []

    def key(chapter: int) -> str:
        return plot_pipeline(chapter).axes[0].texts[-1].get_text()

    # The key names only the colours drawn: no stage before chapter 7's, none after 11's.
    assert key(8) == "orange: the stage this chapter studies; grey, dashed: later chapters"
    assert key(10) == (
        "orange: this chapter's stage; blue: built in earlier chapters; "
        "grey, dashed: later chapters"
    )
    assert key(11) == "orange: this chapter's stage; blue: built in earlier chapters"
    assert key(12) == "blue: every stage"


def test_stage_scores_and_latency_draw_one_mark_per_pipeline():
    from types import SimpleNamespace

    from spaceship_utils.plotting.evaluation import plot_latency, plot_stage_scores

    results = {
        name: SimpleNamespace(score=score, standard_error=0.005)
        for name, score in (("detector", 0.77), ("refined", 0.89), ("shipped", 0.96))
    }
    fig = plot_stage_scores(results)
    ax = fig.axes[0]
    names = [label.get_text() for label in ax.get_yticklabels()]
    ticks = dict(zip(names, ax.get_yticks(), strict=True))
    assert ticks["detector"] > ticks["refined"] > ticks["shipped"]  # the first stage on top
    costs = [{"pipeline": "a", "ms_per_image": 7.0}, {"pipeline": "b", "ms_per_image": 29.0}]
    fig = plot_latency(costs, budget_ms=20)
    bars = fig.axes[0].patches
    assert len(bars) == 2 and bars[1].get_width() == 29.0
    assert any("budget 20 ms" in text.get_text() for text in fig.axes[0].texts)


def test_latency_names_the_orange_bars_only_when_a_pipeline_is_over_the_budget():
    from spaceship_utils.plotting.evaluation import plot_latency

    within = [{"pipeline": "a", "ms_per_image": 7.0}, {"pipeline": "b", "ms_per_image": 15.0}]
    assert "orange" not in plot_latency(within, budget_ms=20).axes[0].get_xlabel()
    over = [*within, {"pipeline": "c", "ms_per_image": 29.0}]
    assert "orange: over the budget" in plot_latency(over, budget_ms=20).axes[0].get_xlabel()
