"""Find a hidden spaceship in a noisy image and predict its rotated box: the book's package.

Modules: `data` (generators), `geometry` (boxes, IoU), `metrics` (the challenge score),
`preprocessing` (threshold, label scaling, yaw codes), `plotting` (every figure),
`models`, `training`, `evaluation` and `pretrained` (the seed's two networks).
"""

__version__ = "0.1.0"
