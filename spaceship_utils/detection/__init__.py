"""Networks turned into boxes: the pipelines and the stages of the refined detector.

- `pipelines`: the seed's two-network rule and the one-network detector.
- `refined`: the refined detector, its settings (`with_settings`) and the order of its
  stages.
- `refinement`: the refiner's stage: passes over turned windows, one view or four.
- `restarts`: the verifier's stage: doubted boxes started again from turned axes, moved
  boxes and the detector's second guess.
- `candidates`: the one rule that keeps a box among candidates, and the outline fits that
  join them.
- `presence`: the presence gate and the presence stage, its votes.
- `variants`: several refined detectors that differ in settings, scored sharing their work.
- `outline_fit`: the generator's own outline fitted to the pixels.
- `line_search`: the long noise lines of an image (Hough transform).
- `line_vote`: a vote on presence from the outline's likelihood once the lines are found.
- `symmetry`: the generator's eight exact symmetries and test-time averaging.
"""
