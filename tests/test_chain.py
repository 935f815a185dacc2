"""The shipped pipeline's recipe (`spaceship_utils.chain`) and its command
(`python -m spaceship_utils.reproduce`): the whole chain at a tiny budget, so it cannot rot."""

import json
from pathlib import Path

import pytest

from spaceship_utils import chain, reproduce
from spaceship_utils.chain import RECIPE, Check, Collect, Factor, Fit, Train, run_recipe
from spaceship_utils.evaluation.setting_fits import simplest_within
from spaceship_utils.pretrained import EARLIER_RUNS_DIR, read_manifest

RECIPE_NAMES = [step.name for step in RECIPE]


def test_every_step_starts_from_steps_before_it_and_the_pipeline_from_steps_of_the_recipe():
    seen = set()
    for step in RECIPE:
        sources = {
            Train: lambda s: (s.starts_from, s.own_answers),
            Factor: lambda s: (s.starts_from,),
            Collect: lambda s: (s.verifier,),
            Fit: lambda s: (s.verifier,),
            Check: lambda s: (),
        }[type(step)](step)
        assert {source for source in sources if source} <= seen, step.name
        assert step.name not in seen and step.hours > 0 and step.purpose
        seen.add(step.name)
    assert set(chain.PIPELINE_STEPS.values()) <= seen
    assert isinstance(RECIPE[-1], Check)


RECORDED_RUNS = {
    "classifier": ("baseline", "classifier"),
    "detector": ("detector", "detector"),
    "refiner": "first_refiner_cycle",
    "refiner-second": ("refined_detector", "refiner"),
    "verifier": "first_verifier_cycle",
    "verifier-own": "second_verifier_cycle",
    "verifier-ninth": ("refined_detector", "verifier"),
}
"""Where the run each training step stands for is recorded: the shipped weights' manifest
(model, role) or an earlier run's record (`pretrained.EARLIER_RUNS_DIR`)."""


def _recorded_run(step: Train, manifest: dict) -> dict:
    where = RECORDED_RUNS[step.name]
    if isinstance(where, tuple):
        return manifest[where[0]]["files"][where[1]]["provenance"]
    return json.loads((EARLIER_RUNS_DIR / where / "provenance.json").read_text())


def test_each_training_step_expects_the_hours_its_recorded_run_took():
    manifest = read_manifest()
    for step in RECIPE:
        if isinstance(step, Train):
            assert step.hours == _recorded_run(step, manifest)["wall_hours"], step.name


def test_the_simplest_setting_within_the_tolerance_wins_ties():
    assert simplest_within((0.5, 0.8, 0.9), [0.90, 0.9409, 0.9414], tolerance=0.001) == 0.8
    assert simplest_within((0.5, 0.8, 0.9), [0.90, 0.9400, 0.9414], tolerance=0.001) == 0.9
    with pytest.raises(ValueError, match="one score per candidate"):
        simplest_within((0.5, 0.8), [0.9])
    with pytest.raises(ValueError, match="every score must be finite"):
        simplest_within((0.5, 0.8), [float("nan"), 0.9])


def test_a_spent_budget_stops_before_any_step(tmp_path):
    lines = []
    assert run_recipe(tmp_path, "tiny", hours=1e-9, log=lines.append) is None
    assert lines[-1].startswith("stopped before classifier finished")
    assert [path.name for path in tmp_path.iterdir()] == ["recipe.json"]


def test_a_folder_keeps_its_budget(tmp_path):
    run_recipe(tmp_path, "tiny", hours=1e-9, log=lambda line: None)
    with pytest.raises(chain.RecipeError, match="at the 'tiny' budget, not 'full'"):
        run_recipe(tmp_path, "full", hours=1e-9)


def _pretend_done(root, step):
    """Make `step`'s folder look finished, as `step_done` reads it."""
    folder = root / step.name
    folder.mkdir(parents=True)
    if isinstance(step, Train):
        (folder / "provenance.json").write_text(json.dumps({"recipe_step": step.name}))
    else:
        (folder / "result.json").write_text(json.dumps({"settings": {}}))


def test_a_step_done_after_one_that_is_not_is_refused(tmp_path):
    presence = RECIPE[RECIPE_NAMES.index("presence")]  # a fit with no network before it
    _pretend_done(tmp_path, presence)
    assert chain.step_done(presence, tmp_path, chain.BUDGETS["tiny"])
    with pytest.raises(chain.RecipeError, match="presence are done but classifier"):
        run_recipe(tmp_path, "tiny", hours=1e-9)


def test_a_training_step_is_done_only_once_its_provenance_names_it(tmp_path):
    step, budget = RECIPE[0], chain.BUDGETS["tiny"]
    (tmp_path / step.name).mkdir()
    (tmp_path / step.name / "final.weights.h5").write_bytes(b"")
    assert not chain.step_done(step, tmp_path, budget)  # the run had not finished writing
    (tmp_path / step.name / "provenance.json").write_text(json.dumps({"date": "today"}))
    assert not chain.step_done(step, tmp_path, budget)
    (tmp_path / step.name / "provenance.json").write_text(json.dumps({"recipe_step": "classifier"}))
    assert chain.step_done(step, tmp_path, budget)


def test_each_training_step_runs_as_its_recorded_run_did(tmp_path):
    """Every setting of each step's run (not only its seed and epochs) is the recorded
    run's, and the tiny budget changes only the sizes."""
    manifest = read_manifest()
    for step in RECIPE:
        if not isinstance(step, Train):
            continue
        record = _recorded_run(step, manifest)
        config = chain.step_config(step, tmp_path, chain.BUDGETS["full"])
        for name in ("seed", "epochs", "steps_per_epoch", "batch_size", "learning_rate"):
            assert getattr(config, name) == record[name], (step.name, name)
        assert config.schedule == record["schedule"] and config.ema_momentum == record.get(
            "ema_momentum"
        ), step.name
        assert (config.initial_weights is None) == ("initial_weights" not in record), step.name
        tiny = chain.step_config(step, tmp_path, chain.BUDGETS["tiny"])
        assert (tiny.seed, tiny.learning_rate, tiny.schedule) == (
            config.seed,
            config.learning_rate,
            config.schedule,
        )
        assert tiny.training_images < 100


def test_unknown_budgets_and_steps_are_named(tmp_path):
    with pytest.raises(ValueError, match="budget must be one of"):
        run_recipe(tmp_path, "huge")
    with pytest.raises(ValueError, match="until must be one of the steps"):
        run_recipe(tmp_path, "tiny", until="regressor")
    with pytest.raises(ValueError, match="hours must be > 0"):
        run_recipe(tmp_path, "tiny", hours=-1.0)
    with pytest.raises(SystemExit):
        reproduce.main(["--hours", "0", "--root", str(tmp_path)])


def test_the_step_list_names_what_each_step_starts_from(tmp_path):
    rows = {row.split()[0]: row for row in reproduce.recipe_table(tmp_path, "full").splitlines()}
    assert "random weights" in rows["classifier"]
    assert "verifier-own + answers of own-answers-9" in rows["verifier-ninth"]
    assert "the pipeline, verifier verifier-lean" in rows["restarts"]
    assert "verifier-ninth" in rows["verifier-lean"]  # the network it factors
    assert "the pipeline so far" in rows["check"]


@pytest.mark.slow
def test_the_whole_chain_runs_at_a_tiny_budget_and_resumes_step_by_step(tmp_path, capsys):
    lines = []
    assert run_recipe(tmp_path, "tiny", until="refiner", log=lines.append) is None
    assert [line for line in lines if line.startswith("[")][-1].startswith("[3/14] refiner:")
    lines.clear()
    result = run_recipe(tmp_path, "tiny", log=lines.append)
    steps = [line for line in lines if line.startswith("[")]
    assert steps[:3] == [f"[{n}/14] {name}: done" for n, name in enumerate(RECIPE_NAMES[:3], 1)]
    assert len(steps) == len(RECIPE) and not any(s.endswith(": done") for s in steps[3:])
    # The check ran and says what it found; the tiny networks learnt nothing.
    assert set(result) >= {"scores", "gain", "standard_error", "passes", "settings"}
    assert result["passes"] is False and result["images"] == chain.BUDGETS["tiny"].check_images
    assert set(result["settings"]) == {
        "presence_threshold",
        "restart_below",
        "outline_weight",
        "verified_presence_threshold",
        "line_free_fits",
    }
    for step in RECIPE:  # each network's record names its step
        if isinstance(step, Train | Factor):
            provenance = json.loads((tmp_path / step.name / "provenance.json").read_text())
            assert provenance["recipe_step"] == step.name
        if isinstance(step, Factor):  # and a factored one its rank, and the run it factors
            assert provenance["detector_options"] == {"rank": step.rank}
            assert provenance["factored"]["from_step"] == step.starts_from
            history = (tmp_path / step.name / "history.csv").read_text()
            assert history == (tmp_path / step.starts_from / "history.csv").read_text()
    # Done is done: the command lists every step as done and only reads the check again.
    assert reproduce.main(["--budget", "tiny", "--root", str(tmp_path)]) == 1
    printed = capsys.readouterr().out
    assert printed.count(": done") == len(RECIPE) and printed.count("NOT within") == 1
    assert reproduce.recipe_table(tmp_path, "tiny").count("done") == len(RECIPE)
    assert run_recipe(tmp_path, "tiny", until="outlines", log=lines.append) is None


def test_the_book_states_the_recipes_cpu_hours():
    from spaceship_utils.chain import expected_hours

    page = (Path(__file__).parents[1] / "book" / "running_the_code.md").read_text()
    assert f"**{expected_hours():.1f} CPU hours**" in page
