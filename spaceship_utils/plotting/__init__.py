"""Every figure of the book, by the chapters that show it.

- `style`: the book's figure style, colours and box drawing.
- `samples`: sample images with their true and predicted boxes.
- `data`: the generator's layers, pixel values and thresholds (chapters 1-2).
- `labels`: label encodings and their losses (chapter 3).
- `training`: training curves (chapters 4, 5 and 7).
- `evaluation`: scores, IoU histograms and galleries (chapter 6).
- `detection`: the detector, refiner, outline fits and line search (chapter 7).
"""
