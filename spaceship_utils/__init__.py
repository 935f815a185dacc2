"""Find a hidden spaceship in a noisy image and predict its rotated box: the book's package.

Modules: `data` (generators), `geometry` (boxes, IoU), `metrics` (the challenge score),
`preprocessing` (threshold, label scaling, yaw codes), `plotting` (every figure),
`models`, `training`, `evaluation` and `pretrained` (the seed's two networks).
"""

__version__ = "0.1.0"


def load_pretrained(name: str = "baseline"):
    """A ready-to-use model with shipped, verified weights: `.predict(images)` -> (N, 5) boxes.

    Imported lazily so that `import spaceship_utils` does not start Keras.
    """
    from .pretrained import load_pretrained as _load

    return _load(name)
