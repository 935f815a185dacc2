"""What every other part uses: input checks, rotated-box geometry, the challenge score,
plain-text tables and the runtime (the one place Keras is imported from).

- `validation`: input checks at the public boundary, the image and label sizes.
- `geometry`: rotated boxes: corners, the ship outline, heading, vectorised IoU.
- `metrics`: the challenge score and its relatives over whole arrays.
- `tables`: `format_table`, the one plain-text table formatter.
- `runtime`: what the code runs on, importing Keras, running a network in batches.
"""
