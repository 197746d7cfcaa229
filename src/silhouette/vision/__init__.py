"""Image code that needs no AWS: decoding, pose, segmentation, clothing, colours, face, overlay.
Plain functions on numpy arrays, tested on real photos."""
