"""The data: the challenge's generator, preprocessing, and the pixel model.

- `generator`: the faithful `make_data`, its separate layers, the fast `generate_batch`.
- `preprocessing`: the threshold, label scaling and the yaw codes.
- `pixel_model`: the densities of a noise pixel's and a ship pixel's value, which the
  outline fits and chapter 2 use.
"""
