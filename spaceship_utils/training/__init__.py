"""Training on fresh generated data, resumable at any step.

- `tasks`: the registry of the networks the book trains (`TASKS`): build, examples, loss,
  how a run is judged, recipe.
- `recipes`: `TrainingConfig`, a run's settings, and the learning-rate schedules.
- `batches`: the reproducible batches of a run and its validation data.
- `loop`: `train_model`, the loop that checkpoints, resumes and keeps the best weights.
- `runs`: what a run writes to its directory, and reading it back.
- `hard_examples`: the refined detector's own answers, to train its verifier on.

The command line is `python -m spaceship_utils.train`.
"""
