"""Every figure of the book, by the chapters that show it.

- `style`: the book's figure style, colours and box drawing.
- `samples`: sample images with their true and predicted boxes.
- `data`: the generator's layers, pixel values and thresholds (chapters 1-2).
- `labels`: label encodings and their losses (chapter 3).
- `training`: training curves (chapters 4, 5 and 7).
- `evaluation`: scores, IoU histograms and galleries (chapters 6 and 8), the score of each
  stage and its cost (chapter 12).
- `pipeline`: the map of chapters 7-12, the pipeline drawn up to a chapter's own stages.
- `detection`: the detector, refiner, outline fits and line search (chapters 7 and 9-11).
"""
