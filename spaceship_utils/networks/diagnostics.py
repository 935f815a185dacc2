"""Checks that a detector can learn what it is asked: targets that decode back to the
labels, a network that memorises one batch, and batch statistics refreshed on new images."""

from __future__ import annotations

import numpy as np

from spaceship_utils.core.geometry import rotated_iou, wrapped_angle_error
from spaceship_utils.core.runtime import import_keras
from spaceship_utils.core.validation import (
    IMAGE_SIZE,
    check_boxes,
    check_count,
    check_images,
    check_same_length,
)
from spaceship_utils.networks.detector import build_detector
from spaceship_utils.networks.detector_loss import detector_loss
from spaceship_utils.networks.detector_targets import (
    STRIDE,
    decode_predictions,
    encode_targets,
    outputs_from_targets,
)

keras = import_keras()


layers = keras.layers


ops = keras.ops


def round_trip_errors(labels: np.ndarray, stride: int = STRIDE) -> dict[str, float]:
    """Encode ship labels (N, 5), decode the outputs that match the targets exactly, and
    return the largest errors: position and size (px), yaw (rad), and the smallest IoU."""
    decoded, _ = decode_predictions(outputs_from_targets(encode_targets(labels, stride)))
    return {
        "position (px)": float(np.abs(decoded[:, :2] - labels[:, :2]).max()),
        "size (px)": float(np.abs(decoded[:, 3:] - labels[:, 3:]).max()),
        "yaw (rad)": float(wrapped_angle_error(decoded[:, 2], labels[:, 2]).max()),
        "smallest IoU": float(rotated_iou(decoded, labels).min()),
    }


def memorise_batch(
    images: np.ndarray,
    labels: np.ndarray,
    steps: int,
    learning_rate: float = 1e-3,
    seed: int = 0,
    network: keras.Model | None = None,
) -> tuple[keras.Model, list[float]]:
    """Train a fresh detector (or `network`) on one fixed batch for `steps` Adam steps.

    The sanity check before a long run: if encoding, loss and decoding fit together, the
    network can at least memorise a handful of images (N, 200, 200) with labels (N, 5).
    Returns the network and the loss at each step (computed before that step's update).
    """
    images = check_images(images)
    labels = check_boxes(labels, "labels")
    check_same_length(images=images, labels=labels)
    steps = check_count(steps, "steps", minimum=1)
    keras.utils.set_random_seed(seed)
    network = build_detector() if network is None else network
    network.compile(keras.optimizers.Adam(learning_rate), loss=detector_loss)
    stride = IMAGE_SIZE // network.output_shape[1]  # the targets follow the network's grid
    history = network.fit(
        images.astype(np.float32),
        encode_targets(labels, stride),
        epochs=steps,
        batch_size=len(images),
        verbose=0,
    )
    return network, [float(loss) for loss in history.history["loss"]]


def fit_report(
    network: keras.Model, images: np.ndarray, labels: np.ndarray, training: bool
) -> tuple[str, np.ndarray]:
    """How well `network` fits a batch: two lines, each image's IoU and each image's
    presence, and the decoded boxes (N, 5). `training` runs batch normalisation on the
    batch's own statistics (and nudges its running averages) instead of using the running
    averages."""
    outputs = keras.ops.convert_to_numpy(network(images.astype(np.float32), training=training))
    boxes, presence = decode_predictions(outputs)
    ious = rotated_iou(boxes, labels)
    mode = "training mode" if training else "inference mode"
    line = (
        f"{mode:>14}: IoU {np.array2string(ious, precision=2)}, mean {ious.mean():.2f}\n"
        f"{'':>14}  presence {np.array2string(presence, precision=2)}"
    )
    return line, boxes


def refresh_batch_statistics(network: keras.Model, images: np.ndarray) -> None:
    """Set every batch-normalisation layer's running mean and variance to those of `images`.

    One forward pass in training mode with momentum 0, weights untouched. After it, the
    network in inference mode computes on `images` (N, 200, 200) what it computes in
    training mode: the way to show that a gap between the two modes is only the lag of the
    running statistics.
    """
    images = check_images(images).astype(np.float32)
    norms = [layer for layer in network.layers if isinstance(layer, layers.BatchNormalization)]
    saved = [layer.momentum for layer in norms]
    try:
        for layer in norms:
            layer.momentum = 0.0
        network(images, training=True)
    finally:
        for layer, momentum in zip(norms, saved, strict=True):
            layer.momentum = momentum
