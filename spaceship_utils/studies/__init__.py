"""The statistics chapters 1-3 study before any network is trained.

- `label_statistics`: label tables and label-box geometry (chapters 1 and 3).
- `pixel_statistics`: what a threshold keeps of each kind of pixel (chapter 2).
- `label_losses`: each label column's and each yaw code's weight in a loss (chapter 3).
"""
