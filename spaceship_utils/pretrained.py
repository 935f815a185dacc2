"""Shipped weights and the stable entry point `load_pretrained`.

    from spaceship_utils import load_pretrained
    model = load_pretrained("baseline")   # the seed's classifier + regressor
    boxes = model.predict(images)          # (N, 200, 200) raw images -> (N, 5), NaN row = no ship

Weights live in `spaceship_utils/weights/` (weights only, no optimizer state). The
manifest there records each file's SHA-256 and how it was trained; a file that is
missing or whose digest differs raises `WeightsError` naming the file and the fix.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from spaceship_utils.core.validation import check_fraction
from spaceship_utils.detection.candidates import check_weight
from spaceship_utils.detection.line_vote import LineVote
from spaceship_utils.detection.pipelines import BaselinePipeline, DetectorPipeline
from spaceship_utils.detection.presence import PRESENCE_THRESHOLD
from spaceship_utils.detection.refined import SETTING_NAMES, RefinedDetectorPipeline
from spaceship_utils.training.recipes import TrainingConfig, kept_epoch
from spaceship_utils.training.runs import file_sha256, read_config, read_history
from spaceship_utils.training.tasks import build_network, task_named

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


MANIFEST = WEIGHTS_DIR / "manifest.json"


PRETRAINED_MODELS = {
    "baseline": ("classifier", "regressor"),
    "detector": ("detector",),
    "refined_detector": ("detector", "refiner", "classifier", "verifier"),
}
"""The models `load_pretrained` knows, and the networks (roles) each one is made of. The
refined detector shares the detector's weights file and the baseline's classifier, and
adds the refiner's and the verifier's."""


ABLATIONS_DIR = WEIGHTS_DIR / "detector_ablations"
"""Records (config.json and history.csv, no weights) of chapter 7's short comparison runs."""


REFERENCE_ABLATION = "final"
"""The comparison run that trains the shipped design at the short budget."""


EARLIER_RUNS_DIR = WEIGHTS_DIR / "earlier_runs"
"""Records (config.json, history.csv, provenance.json; no weights) of runs whose weights
the book shipped before a longer run replaced them."""


class WeightsError(RuntimeError):
    """A weights file is missing, unlisted or corrupt."""


def read_manifest(manifest_path: Path = MANIFEST) -> dict:
    """The weights manifest: {model name: {"files": {role: {"file", "sha256"}}, ...}}."""
    if not manifest_path.is_file():
        raise WeightsError(
            f"{manifest_path} is missing: reinstall the package or restore it with "
            "`git checkout -- spaceship_utils/weights`"
        )
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise WeightsError(
            f"{manifest_path} is not valid JSON ({error}): restore it with "
            "`git checkout -- spaceship_utils/weights/manifest.json` or reinstall the package"
        ) from error
    return manifest


def verified_weights_path(name: str, role: str, weights_dir: Path = WEIGHTS_DIR) -> Path:
    """Path of the `role` weights of model `name`, its SHA-256 checked against the manifest."""
    manifest = read_manifest(weights_dir / "manifest.json")
    retrain = (
        f"`python -m spaceship_utils.train {role}`, then "
        f"`install_run({name!r}, {role!r}, '~/spaceship-runs/{role}')`"
    )
    entry = manifest.get(name, {}).get("files", {}).get(role)
    if entry is None:
        raise WeightsError(
            f"no {role} weights for {name!r} are shipped yet (the manifest "
            f"{weights_dir / 'manifest.json'} lists none). Train them with {retrain}"
        )
    path = weights_dir / entry["file"]
    if not path.is_file():
        raise WeightsError(
            f"weights file {path} is missing. Restore it with "
            f"`git checkout -- {_repo_relative(path)}` "
            f"(or reinstall the package), or retrain it: {retrain}"
        )
    actual = file_sha256(path)
    if actual != entry["sha256"]:
        raise WeightsError(
            f"weights file {path} is corrupt: SHA-256 {actual[:12]}... differs from the manifest's "
            f"{entry['sha256'][:12]}.... Restore it with `git checkout -- {_repo_relative(path)}` "
            f"(or reinstall the package), or retrain it: {retrain}"
        )
    return path


def install_run(
    name: str,
    role: str,
    run_dir: str | Path,
    weights_dir: Path = WEIGHTS_DIR,
    presence_threshold: float | None = None,
    restart_below: float | None = None,
    verified_presence_threshold: float | None = None,
    outline_weight: float | None = None,
) -> Path:
    """Ship a finished training run: copy its weights and history into the package.

    `run_dir` is what `train_model` wrote: `final.weights.h5`, `history.csv` and
    `provenance.json` (how, where and on how many images it trained). The manifest gets
    the weights' SHA-256 and the provenance. `presence_threshold`, if given, is the
    threshold `load_pretrained` gives model `name` (chosen on validation data, see
    `pipelines.calibrated_presence_threshold`); without it the model keeps the seed's 0.5.
    `restart_below`, if given, is the refined detector's verifier score under which it
    restarts a box (`refined.RefinedDetectorPipeline`, also chosen on validation data),
    and `verified_presence_threshold` the presence its box needs once the verifier votes
    (`restart_tables.verifier_vote_table`), and `outline_weight` the weight of the fitted
    outlines in its choice among restarts (`outline_tables.outline_judge_table`).
    """
    if role not in PRETRAINED_MODELS.get(name, ()):
        raise ValueError(
            f"{name!r} has no {role!r} network; models and their networks: {PRETRAINED_MODELS}"
        )
    if presence_threshold is not None:
        presence_threshold = check_fraction(presence_threshold, "presence_threshold")
    verifier_settings = {
        "restart_below": restart_below,
        "verified_presence_threshold": verified_presence_threshold,
        "outline_weight": outline_weight,
    }
    for setting, value in verifier_settings.items():
        if value is not None:
            if name != "refined_detector":
                raise ValueError(f"only the refined detector has a {setting}, not {name!r}")
            check = check_weight if setting == "outline_weight" else check_fraction
            verifier_settings[setting] = check(value, setting)
    run_dir = Path(run_dir).expanduser()
    task = read_config(run_dir).get("task") if (run_dir / "config.json").is_file() else role
    if task != role:
        raise ValueError(f"{run_dir} trained a {task}, not the {role} of {name!r}")
    sources = {kind: run_dir / kind for kind in ("final.weights.h5", "provenance.json")}
    for path in sources.values():
        if not path.is_file():
            raise WeightsError(
                f"cannot install {run_dir}: {path.name} is missing (is the run finished?)"
            )
    weights_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = weights_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    target = weights_dir / f"{name}_{role}.weights.h5"
    shutil.copyfile(sources["final.weights.h5"], target)
    if (run_dir / "history.csv").is_file():  # the training curves travel with the weights
        shutil.copyfile(run_dir / "history.csv", weights_dir / f"{name}_{role}.history.csv")
    entry = manifest.setdefault(name, {"files": {}})
    if presence_threshold is not None:
        entry["presence_threshold"] = presence_threshold
    entry.update({key: value for key, value in verifier_settings.items() if value is not None})
    entry["files"][role] = {
        "file": target.name,
        "sha256": file_sha256(target),
        "provenance": json.loads(sources["provenance.json"].read_text()),
    }
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return target


def shipped_ablations(ablations_dir: Path = ABLATIONS_DIR) -> dict[str, Path]:
    """{run name: record directory} of the detector's short comparison runs, reference first.

    Each directory holds what `runs.copy_run_record` copies: `config.json`, `history.csv`.
    """
    reference = ablations_dir / REFERENCE_ABLATION
    if not reference.is_dir():
        raise WeightsError(
            f"{reference} is missing: restore it with `git checkout -- spaceship_utils/weights`"
        )
    others = sorted(p for p in ablations_dir.iterdir() if p.is_dir() and p != reference)
    return {REFERENCE_ABLATION: reference} | {p.name: p for p in others}


def shipped_history(
    name: str, role: str, weights_dir: Path = WEIGHTS_DIR
) -> dict[str, list[float]]:
    """The training history (per-epoch metrics) recorded with shipped weights."""
    path = weights_dir / f"{name}_{role}.history.csv"
    if not path.is_file():
        raise WeightsError(f"no training history {path} was shipped with the {name} {role}")
    return read_history(path)


def describe_weights(name: str = "baseline", weights_dir: Path = WEIGHTS_DIR) -> str:
    """How each shipped file of model `name` was trained; a note where it saw fewer images
    than the seed's recipe for that network."""
    lines = []
    for role, entry in read_manifest(weights_dir / "manifest.json")[name]["files"].items():
        record = entry["provenance"]
        lines.append(f"{role}: {record['training_images']:,} training images, {record['date']}")
        lines.append(f"  trained with {record['runtime']}")
        recipe = TrainingConfig.recipe(role).training_images
        if record["training_images"] < recipe:
            lines.append(
                f"  NOTE: fewer images than the {role}'s recipe ({recipe:,}); expect a lower score."
            )
    return "\n".join(lines)


def describe_shipped_run(name: str, role: str, weights_dir: Path = WEIGHTS_DIR) -> str:
    """How the shipped `role` weights of model `name` were trained, and where: one line on
    the run, one on the epoch whose weights were kept (the best by its task's `monitor`)."""
    record = read_manifest(weights_dir / "manifest.json")[name]["files"][role]["provenance"]
    history = shipped_history(name, role, weights_dir)
    title = name if role == name else f"{name} {role}"  # 'detector', not 'detector detector'
    return _describe_run(title, role, record, history, "shipped weights")


def earlier_run_history(name: str, runs_dir: Path = EARLIER_RUNS_DIR) -> dict[str, list[float]]:
    """The per-epoch history of `name`, a run whose weights the book shipped before."""
    return read_history(_earlier_run(name, runs_dir) / "history.csv")


def describe_earlier_run(name: str, runs_dir: Path = EARLIER_RUNS_DIR) -> str:
    """How `name`, a run whose weights the book shipped before, was trained, and where;
    with the digest of those weights if its record keeps it (`weights_sha256`), so a later
    run that started from them can be matched to it."""
    run = _earlier_run(name, runs_dir)
    record = json.loads((run / "provenance.json").read_text())
    role = read_config(run)["task"]
    return _describe_run(
        f"{name} ({role})", role, record, read_history(run / "history.csv"), "weights kept"
    )


def _earlier_run(name: str, runs_dir: Path) -> Path:
    run = runs_dir / name
    if not run.is_dir():
        known = sorted(p.name for p in runs_dir.iterdir()) if runs_dir.is_dir() else []
        raise WeightsError(
            f"{run} is missing (records here: {known}); restore it with "
            "`git checkout -- spaceship_utils/weights`"
        )
    return run


def _describe_run(title: str, role: str, record: dict, history: dict, kept_as: str) -> str:
    """A run's record in lines that fit the book's column: what it trained on, where it
    started from, its speed, machine and date, its runtime, the epoch it keeps, and the
    factoring of its dense layer, if any (`low_rank`)."""
    machine = record.get("machine", "machine not recorded")
    metric = task_named(role).monitor[0]
    kept = kept_epoch(history, role)
    lines = [
        f"{title}: {record['training_images']:,} training images (batch "
        f"{record['batch_size']}) in {record['training_seconds'] / 3600:.2f} h"
    ]
    start = record.get("initial_weights")
    if start:
        step = start.get("recipe_step")
        source = start["file"] if step is None else f"the weights of recipe step {step}"
        lines.append(f"started from {source} (SHA-256 {start['sha256'][:12]}...)")
    lines.append(
        f"validation included; {record['images_per_second']:.0f} training images/s in a "
        f"median epoch, {record['date']}"
    )
    lines.append(f"machine: {machine}")
    lines.append(f"runtime: {record['runtime']}")
    lines.append(
        f"{kept_as}: epoch {kept} of {len(history[metric])}, the best {metric} "
        f"({history[metric][kept - 1]:.4f})"
        + (f", SHA-256 {record['weights_sha256'][:12]}..." if "weights_sha256" in record else "")
    )
    factored = record.get("factored")
    if factored:
        lines.append(
            f"then its dense layer factored to rank {factored['rank']} "
            f"(recipe step {record['recipe_step']}):"
        )
        lines.append(
            f"  {factored['variance_kept']:.1%} of its variance kept, "
            f"on {factored['windows']:,} windows"
        )
    return "\n".join(lines)


def load_pretrained(
    name: str = "baseline", weights_dir: Path = WEIGHTS_DIR
) -> BaselinePipeline | DetectorPipeline:
    """A ready-to-use model with shipped, verified weights: 'baseline', 'detector' or
    'refined_detector' (the detector, then the refiner on a window around each box, with
    the baseline's classifier voting on presence and the verifier restarting doubted boxes
    and voting too).

    All answer `.predict(images)`: raw (N, 200, 200) images -> (N, 5) boxes, NaN row = no ship.
    """
    if name not in PRETRAINED_MODELS:
        raise ValueError(f"unknown pretrained model {name!r}; available: {list(PRETRAINED_MODELS)}")
    networks = {}
    settings = read_manifest(weights_dir / "manifest.json").get(name, {})
    threshold = settings.get("presence_threshold", PRESENCE_THRESHOLD)
    for role in PRETRAINED_MODELS[name]:
        path = verified_weights_path(name, role, weights_dir)
        provenance = read_manifest(weights_dir / "manifest.json")[name]["files"][role]["provenance"]
        network = build_network(role, **provenance.get("detector_options", {}))
        _load_weights(
            network,
            path,
            f"restore it with `git checkout -- {_repo_relative(path)}` or reinstall the package",
        )
        networks[role] = network
    if name == "detector":
        return DetectorPipeline(networks["detector"], threshold)
    if name == "refined_detector":
        shipped = {key: settings[key] for key in SETTING_NAMES if key in settings}
        shipped["line_vote"] = shipped_line_vote(settings, weights_dir / "manifest.json")
        return RefinedDetectorPipeline(
            networks["detector"],
            networks["refiner"],
            classifier=networks["classifier"],
            verifier=networks["verifier"],
            **shipped,
        )
    return BaselinePipeline(networks["classifier"], networks["regressor"], threshold)


def shipped_line_vote(settings: dict, manifest_path: Path = MANIFEST) -> LineVote | None:
    """The refined detector's line vote recorded in its manifest `settings`, None if there
    is none, or a WeightsError naming the manifest if the record is broken."""
    if "line_vote" not in settings:
        return None
    try:
        return LineVote.from_dict(settings["line_vote"])
    except (TypeError, ValueError) as error:
        raise WeightsError(
            f"the line vote in {manifest_path} is broken ({error}): restore it with "
            "`git checkout -- spaceship_utils/weights/manifest.json` or reinstall the package"
        ) from error


def ship_line_vote(vote: LineVote, weights_dir: Path = WEIGHTS_DIR) -> None:
    """Record the refined detector's line vote (`line_vote.fit_line_vote`, fitted on
    validation images) in the manifest, for `load_pretrained` to use."""
    if not isinstance(vote, LineVote):
        raise TypeError(f"vote must be a LineVote, got {type(vote).__name__}")
    _record_refined_detector_settings(weights_dir, "give a line vote", line_vote=vote.as_dict())


def ship_outline_fits(weight: float, line_free: bool, weights_dir: Path = WEIGHTS_DIR) -> None:
    """Record how the refined detector judges its restarts with fitted outlines: the
    outline `weight` and whether the outlines are fitted on the line-free log ratios
    (`outline_tables.outline_judge_table` and `outline_tables.line_free_fit_table`, on validation
    images), for `load_pretrained` to use."""
    weight = check_weight(weight)
    if not isinstance(line_free, bool):
        raise TypeError(f"line_free must be True or False, got {line_free!r}")
    _record_refined_detector_settings(
        weights_dir, "fit outlines", outline_weight=weight, line_free_fits=line_free
    )


def _record_refined_detector_settings(weights_dir: Path, purpose: str, **settings) -> None:
    """Write `settings` into the refined detector's entry of the manifest in `weights_dir`
    (a WeightsError naming the manifest if it has no refined detector to `purpose`)."""
    manifest_path = weights_dir / "manifest.json"
    manifest = read_manifest(manifest_path)
    if "refined_detector" not in manifest:
        raise WeightsError(f"{manifest_path} lists no refined detector to {purpose}")
    manifest["refined_detector"].update(settings)
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def share_shipped_weights(
    name: str, role: str, source: str, weights_dir: Path = WEIGHTS_DIR
) -> None:
    """Let model `name` use the shipped `role` weights of model `source` (the same file, the
    same digest and record), e.g. the refined detector the detector's network."""
    if role not in PRETRAINED_MODELS.get(name, ()) or role not in PRETRAINED_MODELS.get(source, ()):
        raise ValueError(f"both {name!r} and {source!r} must have a {role!r} network")
    manifest_path = weights_dir / "manifest.json"
    manifest = read_manifest(manifest_path)
    entry = manifest.get(source, {}).get("files", {}).get(role)
    if entry is None:
        raise WeightsError(f"{source!r} ships no {role} weights to share")
    manifest.setdefault(name, {"files": {}})["files"][role] = dict(entry)
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def load_detector_run(
    run_dir: str | Path, presence_threshold: float = PRESENCE_THRESHOLD
) -> DetectorPipeline:
    """A detector pipeline from your own training run: the design its config.json records
    and its best epoch's weights (`best.weights.h5`, written after every improving epoch,
    so an unfinished run works too). Choose `presence_threshold` on validation data."""
    return DetectorPipeline(network_of_run(run_dir, "detector"), presence_threshold)


def load_refined_detector_run(
    detector_run: str | Path,
    refiner_run: str | Path,
    classifier_run: str | Path | None = None,
    verifier_run: str | Path | None = None,
    **settings,
) -> RefinedDetectorPipeline:
    """The detector of one run with the refiner of another, the classifier of a third
    voting on presence and the verifier of a fourth restarting the boxes it doubts (each at
    its best epoch), with `settings` (`refined.RefinedSettings`: the thresholds, the outline
    weight, the line vote...). Choose them on validation data (`restart_tables.restart_table`,
    `restart_tables.verifier_vote_table`, `outline_tables.outline_judge_table` and
    `line_vote.fit_line_vote`)."""
    classifier = None if classifier_run is None else network_of_run(classifier_run, "classifier")
    verifier = None if verifier_run is None else network_of_run(verifier_run, "verifier")
    return RefinedDetectorPipeline(
        network_of_run(detector_run, "detector"),
        network_of_run(refiner_run, "refiner"),
        classifier=classifier,
        verifier=verifier,
        **settings,
    )


def network_of_run(run_dir: str | Path, task: str):
    """The `task` network of a training run (or of a chain's `Factor` step), with its best
    epoch's weights."""
    run_dir = Path(run_dir).expanduser()
    config = read_config(run_dir)
    if config.get("task") != task:
        raise ValueError(
            f"{run_dir} holds no {task} run: its config.json is for a "
            f"{config.get('task')!r} run, not a {task} run"
        )
    path = run_dir / "best.weights.h5"
    if not path.is_file():
        raise WeightsError(
            f"{path} is missing: the run has not finished an epoch yet; train it further "
            "(spaceship_utils.train resumes it) and try again"
        )
    network = build_network(task, **config.get("detector_options", {}))
    _load_weights(network, path, "train the run further (the next improving epoch rewrites it)")
    return network


def _load_weights(network, path: Path, fix: str) -> None:
    """`network.load_weights(path)`, or WeightsError naming the file and how to fix it."""
    try:
        network.load_weights(path)
    except Exception as error:  # h5py / Keras errors vary by version
        raise WeightsError(f"weights file {path} could not be loaded ({error}); {fix}") from error


def _repo_relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path(__file__).resolve().parents[1]))
    except ValueError:
        return str(path)
