"""Scoring a pipeline, and the tables the chapters build from the scores.

- `harness`: the challenge score on official samples (`evaluate_model`), galleries,
  groups, comparisons.
- `refiner_tables`: chapter 9's tables of the refiner: passes, views, the presence vote.
- `restart_tables`: chapter 10's tables of the verifier's restarts and its vote.
- `outline_tables`: chapter 11's tables of the outline fits and the line vote.
- `recorded`: predictions recorded on the official samples, read back after a replay.
- `recorded_runs`: the boxes chapters 9 to 11 study, recorded on their validation images,
  read back the same way.
- `stage_gains`: chapter 12's pipelines by stage, left out one at a time, and the paired
  bootstrap that measures each stage's gain.
- `cost`: trainable parameters, FLOPs and CPU latency.
- `setting_fits`: the refined detector's settings fitted on validation images, by rule.
- `book_results`: numbers a chapter records for the book's other pages to quote.
"""
