import numpy as np
import pytest

from spaceship_utils.data.generator import make_data
from spaceship_utils.detection.pipelines import Predictions
from spaceship_utils.evaluation.harness import (
    compare_evaluations,
    compare_group_sets,
    evaluate_model,
    format_rows,
    score_by_group,
    ship_groups,
)


class NeverSeesAShip:
    """A stand-in model that always answers 'no ship'."""

    def predict_details(self, images):
        count = len(images)
        return Predictions(
            boxes=np.full((count, 5), np.nan),
            presence=np.zeros(count),
            raw_boxes=np.full((count, 5), 100.0),
        )


@pytest.mark.slow
def test_evaluation_uses_the_official_stream_and_semantics():
    result = evaluate_model(NeverSeesAShip(), samples=60, seed=4, chunk_size=25, gallery_size=3)
    np.random.seed(4)
    expected = np.array([make_data()[1] for _ in range(60)])
    np.testing.assert_array_equal(result.labels, expected)
    # Every ship is missed (0) and every empty image is a true negative (left out).
    assert result.score == 0.0 and result.mean_iou == 0.0
    assert result.classifier_accuracy == pytest.approx(np.isnan(expected).all(axis=1).mean())
    assert len(result.galleries["ugly"].images) == 3 and not result.galleries["good"].images
    assert set(result.seconds) == {"generation", "inference", "scoring"}
    assert "score (AP@0.7, official): 0.0000" in result.summary()
    assert np.isnan(result.mean_iou_where_boxed)  # it never drew a box


class AlwaysDrawsTheTruthOnShips:
    """A stand-in model that draws the true box on every ship image, and one on empty ones."""

    def __init__(self, labels):
        self.labels = labels

    def predict_details(self, images):
        if not images.any():  # the warm-up call on a blank image
            return NeverSeesAShip().predict_details(images)
        boxes, self.labels = self.labels[: len(images)], self.labels[len(images) :]
        drawn = np.where(np.isnan(boxes), 50.0, boxes)
        return Predictions(boxes=drawn, presence=np.ones(len(images)), raw_boxes=drawn)


@pytest.mark.slow
def test_mean_iou_where_boxed_and_the_comparison_table():
    np.random.seed(5)
    labels = np.array([make_data()[1] for _ in range(40)])
    perfect = evaluate_model(AlwaysDrawsTheTruthOnShips(labels), samples=40, seed=5)
    assert perfect.mean_iou_where_boxed == pytest.approx(1.0)
    ships = (~np.isnan(labels).any(axis=1)).sum()
    assert perfect.score == pytest.approx(ships / 40)  # every empty image holds a false box
    never = evaluate_model(NeverSeesAShip(), samples=40, seed=5)
    lines = compare_evaluations({"truth": perfect, "never": never}).splitlines()
    assert lines[0].split()[:3] == ["model", "score", "mean"]
    assert lines[2].split()[:2] == ["truth", f"{perfect.score:.4f}"] and "nan" in lines[3]
    with pytest.raises(ValueError, match="same samples"):
        compare_evaluations({"a": perfect, "b": evaluate_model(NeverSeesAShip(), samples=3)})
    with pytest.raises(ValueError, match="'b' was evaluated on other samples"):
        other_seed = evaluate_model(NeverSeesAShip(), samples=40, seed=6)
        compare_evaluations({"a": perfect, "b": other_seed})


def test_groups_and_scores_by_group():
    labels = np.array(
        [
            [100.0, 100.0, 0.1, 20.0, 30.0],
            [5.0, 100.0, 2.0, 34.0, 50.0],
            [np.nan] * 5,
        ]
    )
    groups = ship_groups(labels)
    assert list(groups["size"]) == ["width 18-23", "width 30-36", "no ship"]
    assert list(groups["edge"]) == ["outline inside", "outline cut by the edge", "no ship"]
    assert list(groups["yaw"]) == ["yaw 0-90°", "yaw 90-180°", "no ship"]
    rows = score_by_group(np.array([0.9, 0.5, np.nan]), groups["edge"])
    assert [(r["group"], r["samples"], r["score"]) for r in rows] == [
        ("outline cut by the edge", 1, 0.0),
        ("outline inside", 1, 1.0),
    ]
    assert "outline inside" in format_rows(rows)
    half = score_by_group(np.array([0.9, 0.1, 0.8, 0.2]), np.array(["a"] * 4))
    assert half[0]["std_error"] == pytest.approx(0.25)  # sqrt(0.5 * 0.5 / 4)
    assert format_rows(half).splitlines()[0].split() == [
        "group",
        "samples",
        "score",
        "s.e.",
        "mean",
        "IoU",
    ]


@pytest.mark.slow
def test_an_evaluation_reports_its_standard_error_and_its_splits():
    from spaceship_utils.evaluation.harness import format_splits

    np.random.seed(5)
    labels = np.array([make_data()[1] for _ in range(40)])
    result = evaluate_model(AlwaysDrawsTheTruthOnShips(labels), samples=40, seed=5)
    scored = 40  # every ship is a hit and every empty image a false box
    assert result.standard_error == pytest.approx(
        np.sqrt(result.score * (1 - result.score) / scored)
    )
    assert f"(standard error {result.standard_error:.4f})" in result.summary()
    splits = result.splits()
    assert list(splits) == ["size", "edge", "yaw"]
    text = format_splits(splits)
    assert text.startswith("by size\ngroup") and "\n\nby edge\n" in text and "by yaw" in text


def test_groups_are_listed_in_natural_order():
    groups = np.array(["yaw 180-270°", "no ship", "yaw 90-180°", "yaw 0-90°"])
    rows = score_by_group(np.array([0.8, 0.0, 0.5, 0.9]), groups)
    assert [row["group"] for row in rows] == ["yaw 0-90°", "yaw 90-180°", "yaw 180-270°", "no ship"]


def test_compare_group_sets_pools_groups_and_weighs_the_gap():
    groups = np.array(["a"] * 4 + ["b"] * 4 + ["c"] * 2)
    ious = np.array([0.9, 0.9, 0.1, 0.1, 0.9, 0.9, 0.9, 0.1, 0.9, 0.9])
    rows = score_by_group(ious, groups)
    lines = compare_group_sets(rows, ["a"], ["b", "c"]).splitlines()
    # a: 2 of 4; b + c: 5 of 6; s.e. sqrt(0.25 / 4 + (5/6)(1/6) / 6) = 0.2927
    assert lines == [
        "b + c: 0.833 (6 samples)",
        "a:     0.500 (4 samples)",
        "gap +0.333, standard error of the difference 0.293 (+1.1 s.e.)",
    ]
    with pytest.raises(ValueError, match=r"no groups \['d'\]"):
        compare_group_sets(rows, ["a"], ["d"])


def test_score_by_group_checks_shapes():
    with pytest.raises(ValueError, match="same shape"):
        score_by_group(np.zeros(3), np.array(["a", "b"]))


def test_the_presence_threshold_table_shows_the_chosen_rows_and_the_best():
    from spaceship_utils.evaluation.refiner_tables import presence_threshold_table

    labels = np.array([[100, 100, 0.5, 20, 30]] * 3 + [[np.nan] * 5])
    raw_boxes = np.array([[100, 100, 0.5, 20, 30]] * 4, dtype=float)  # right on every ship
    # Two clear ships, one too faint for any threshold, and a box on the empty image at 0.3.
    presence = np.array([0.9, 0.35, 0.04, 0.3])
    lines = presence_threshold_table(presence, raw_boxes, labels).splitlines()
    assert lines[0].split() == ["presence", "threshold", "validation", "score"]
    assert [line.split()[0] for line in lines[2:-1]] == [f"0.{d}0" for d in range(1, 10)]
    # Best: keep the 0.35 ship, drop the empty image's box: 2 hits of 3 scored samples.
    assert lines[-1].split() == ["best:", "0.31", "0.6667"]


def test_far_off_axes_are_grouped_by_the_ships_shape():
    from spaceship_utils.evaluation.restart_tables import far_axis_errors_by_shape

    labels = np.array(
        [
            [100.0, 100.0, 0.0, 20.0, 24.0],  # squat: length / width 1.2
            [100.0, 100.0, 0.0, 20.0, 24.0],
            [100.0, 100.0, 0.0, 20.0, 40.0],  # slender: 2.0
            [100.0, 100.0, 0.0, 20.0, 40.0],
            [np.nan] * 5,
        ]
    )
    boxes = labels.copy()
    boxes[:, 2] = np.radians([40.0, 10.0, 30.0, 34.0, 0.0])  # the 10° box is not far off
    boxes[4] = [50.0, 50.0, 0.0, 10.0, 10.0]
    rows = [line.split() for line in far_axis_errors_by_shape(boxes, labels).splitlines()[2:]]
    assert rows[0] == ["below", "1.3", "1", "40.0", "39.8", "51.3"]
    assert rows[1][-1] == "0" and rows[2][-1] == "0"  # "1.3 to 1.5", "1.5 to 1.7": empty
    assert rows[3] == ["1.7", "and", "above", "2", "32.0", "26.6", "36.9"]


def test_the_ship_iou_table_counts_every_ship_by_band():
    from spaceship_utils.evaluation.restart_tables import ship_iou_table

    labels = np.array(
        [[100.0, 100.0, 0.3, 20.0, 30.0], [50.0, 50.0, 1.0, 25.0, 40.0], [np.nan] * 5]
    )
    boxes = {"exact": labels, "moved": labels + [6.0, 0, 0, 0, 0], "none": np.full((3, 5), np.nan)}
    rows = [row.split() for row in ship_iou_table(boxes, labels).splitlines()[2:]]
    # median IoU, then ships at 0, in (0, 0.5], (0.5, 0.7] and above 0.7
    assert rows[0] == ["exact", "1.000", "0", "0", "0", "2"]
    assert rows[1][0] == "moved" and rows[1][2:] == ["0", "0", "2", "0"]  # 6 px: 0.51, 0.61
    assert rows[2] == ["none", "0.000", "2", "0", "0", "0"]  # no box counts 0


@pytest.mark.slow
def test_variants_are_scored_on_the_same_samples_as_each_one_alone():

    from spaceship_utils import load_pretrained
    from spaceship_utils.evaluation.harness import evaluate_variants

    shipped = load_pretrained("refined_detector")
    without_fits = shipped.with_settings(outline_weight=None)
    kwargs = {"samples": 24, "seed": 3, "chunk_size": 10, "gallery_size": 2}
    together = evaluate_variants({"shipped": shipped, "without fits": without_fits}, **kwargs)
    for name, model in (("shipped", shipped), ("without fits", without_fits)):
        alone = evaluate_model(model, **kwargs)
        np.testing.assert_array_equal(together[name].labels, alone.labels)
        np.testing.assert_allclose(together[name].boxes, alone.boxes, atol=1e-4)
        np.testing.assert_allclose(together[name].presence, alone.presence, atol=1e-6)
        assert together[name].score == alone.score
        assert len(together[name].galleries["good"].images) == 2


@pytest.mark.slow
def test_variants_reuse_the_refined_detectors_evaluation_and_refuse_another():

    from spaceship_utils import load_pretrained
    from spaceship_utils.evaluation.harness import evaluate_variants

    shipped = load_pretrained("refined_detector")
    refined = load_pretrained("refined_detector")  # another load: floats differ a little
    refined.verifier = None
    line_free = shipped.with_settings(line_free_fits=not shipped.line_free_fits)
    variants = {"shipped": shipped, "other fits": line_free}
    kwargs = {"samples": 40, "seed": 4, "chunk_size": 20, "gallery_size": 1}
    first = evaluate_model(refined, **kwargs)
    reused = evaluate_variants(variants, refined=first, **kwargs)
    computed = evaluate_variants(variants, **kwargs)
    for name in variants:
        np.testing.assert_array_equal(reused[name].labels, computed[name].labels)
        np.testing.assert_allclose(reused[name].boxes, computed[name].boxes, atol=0.05)
        np.testing.assert_allclose(reused[name].presence, computed[name].presence, atol=1e-4)
    with pytest.raises(ValueError, match="refined scored 40 samples, not 30"):
        evaluate_variants(variants, refined=first, **{**kwargs, "samples": 30})
    with pytest.raises(ValueError, match="refined is not what these variants"):
        evaluate_variants(variants, refined=computed["shipped"], **kwargs)  # voted presence
    with pytest.raises(ValueError, match="refined is not what these variants"):
        evaluate_variants(variants, refined=first, **{**kwargs, "seed": 5})
