"""The refiner's stage: each box corrected a few times, each time on a window cut around
the last correction, the image read at full resolution there."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spaceship_utils.core.runtime import network_outputs
from spaceship_utils.core.validation import check_count
from spaceship_utils.networks.windows import (
    WINDOW_VIEWS,
    apply_refinement,
    average_view_corrections,
    crop_windows,
    window_views,
)


@dataclass(frozen=True)
class Refinement:
    """The refiner run `passes` times on each box; with `views`, each correction is the
    mean of the refiner's answers on the window's four `WINDOW_VIEWS` (four times the
    refiner's work)."""

    refiner: object
    """The refiner network (`networks.refiner.build_refiner`)."""
    passes: int
    views: bool

    def windows_per_box(self, views: bool | None = None) -> int:
        """The refiner's windows per box for one start: one per pass and view (None: this
        stage's `views`)."""
        views = self.views if views is None else views
        return self.passes * (len(WINDOW_VIEWS) if views else 1)

    def refine(
        self,
        images: np.ndarray,
        boxes: np.ndarray,
        passes: int | None = None,
        batch_size: int = 128,
        views: bool | None = None,
    ) -> list[np.ndarray]:
        """Boxes (N, 5) on images (N, 200, 200) before and after each of `passes` refiner
        passes (None: this stage's), with four views or one (None: this stage's `views`): a
        list of passes + 1 arrays (N, 5)."""
        passes = check_count(self.passes if passes is None else passes, "passes")
        boxes_by_pass = [np.asarray(boxes, dtype=np.float64)]
        for _ in range(passes):
            windows = crop_windows(images, boxes_by_pass[-1])
            corrections = self.corrections(windows, batch_size, views)
            boxes_by_pass.append(apply_refinement(boxes_by_pass[-1], corrections))
        return boxes_by_pass

    def corrections(
        self, windows: np.ndarray, batch_size: int = 128, views: bool | None = None
    ) -> np.ndarray:
        """The refiner's corrections (N, 6) of windows (N, S, S, 2): its answer, or with
        `views` (None: this stage's) the mean of its answers on the four views of each
        window."""
        if not (self.views if views is None else views):
            return network_outputs(self.refiner, windows, batch_size)
        answers = network_outputs(self.refiner, window_views(windows), batch_size)
        return average_view_corrections(answers)
