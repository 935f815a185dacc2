"""The networks, layer by layer, with what each learns from and its loss.

- `seed`: the seed's classifier and box regressor (chapters 4 and 5).
- `detector`: the one-network detector's architecture and its designs (chapter 7).
- `detector_targets`: the detector's output grid, its training targets and their decoding.
- `detector_loss`: the detector's loss, with its alternative box losses.
- `rotated_iou_loss`: the rotated IoU as a differentiable tensor function.
- `diagnostics`: checks of a detector: target round trips, memorising a batch, batch
  statistics.
- `windows`: the refiner's input, a turned window around a box, and its targets (NumPy).
- `refiner`: the network that corrects a box from its window, and its loss.
- `verifier`: the judge of a finished box, read off the refiner's trunk.
- `low_rank`: a trained dense layer rewritten as two thin ones, on the principal
  directions of its pre-activations.
"""
