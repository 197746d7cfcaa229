"""Colours: the dominant colours of the clothing, each with its share and a CSS name.

KMeans runs in CIELAB, where distance follows perceived colour difference, on a fixed-seed
sample of the clothing pixels only (the background never takes part). Clusters a person would
call the same colour are merged and slivers below a minimum share are dropped, so a plain
orange suit reads as one orange rather than five shades of it."""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np

from silhouette.vision.types import DominantColor

# KMeans sees at most this many clothing pixels, drawn uniformly with a fixed seed: a
# 12-megapixel photo clusters as fast as a small one, and every share is still estimated over
# the whole mask (standard error at most 0.35 percentage points for a 20k sample).
SAMPLE_SIZE = 20_000
SEED = 0
# Merging uses CIEDE2000 with the textile lightness weighting kL = 2 (as in CIE94 and CMC 2:1):
# folds and shadows change a garment's lightness far more than its hue or chroma.
TEXTILE_LIGHTNESS_WEIGHT = 2.0
# Clusters closer than this (delta E 2000, textile weighting) are one colour. On the sample
# photos, neighbouring clusters of one plain garment's shading (orange suit, black jacket, cream
# coat) measure 1-10 apart; colours worn together (navy jeans and a black coat, a white shirt
# under a black suit) 14 and more.
MERGE_DELTA_E = 12.0
# Colours with a smaller share are stitching, logos or mask spill, not what someone wears;
# they are dropped and the remaining shares renormalised to sum to 1.
MIN_FRACTION = 0.03

# CSS Color Module Level 4 named colours (https://www.w3.org/TR/css-color-4/#named-colors).
# Synonyms (aqua/cyan, fuchsia/magenta, gray/grey) share a value; the first listed wins.
CSS_COLORS: dict[str, str] = {
    "aliceblue": "#f0f8ff", "antiquewhite": "#faebd7", "aqua": "#00ffff",
    "aquamarine": "#7fffd4", "azure": "#f0ffff", "beige": "#f5f5dc", "bisque": "#ffe4c4",
    "black": "#000000", "blanchedalmond": "#ffebcd", "blue": "#0000ff",
    "blueviolet": "#8a2be2", "brown": "#a52a2a", "burlywood": "#deb887",
    "cadetblue": "#5f9ea0", "chartreuse": "#7fff00", "chocolate": "#d2691e",
    "coral": "#ff7f50", "cornflowerblue": "#6495ed", "cornsilk": "#fff8dc",
    "crimson": "#dc143c", "cyan": "#00ffff", "darkblue": "#00008b", "darkcyan": "#008b8b",
    "darkgoldenrod": "#b8860b", "darkgray": "#a9a9a9", "darkgreen": "#006400",
    "darkgrey": "#a9a9a9", "darkkhaki": "#bdb76b", "darkmagenta": "#8b008b",
    "darkolivegreen": "#556b2f", "darkorange": "#ff8c00", "darkorchid": "#9932cc",
    "darkred": "#8b0000", "darksalmon": "#e9967a", "darkseagreen": "#8fbc8f",
    "darkslateblue": "#483d8b", "darkslategray": "#2f4f4f", "darkslategrey": "#2f4f4f",
    "darkturquoise": "#00ced1", "darkviolet": "#9400d3", "deeppink": "#ff1493",
    "deepskyblue": "#00bfff", "dimgray": "#696969", "dimgrey": "#696969",
    "dodgerblue": "#1e90ff", "firebrick": "#b22222", "floralwhite": "#fffaf0",
    "forestgreen": "#228b22", "fuchsia": "#ff00ff", "gainsboro": "#dcdcdc",
    "ghostwhite": "#f8f8ff", "gold": "#ffd700", "goldenrod": "#daa520", "gray": "#808080",
    "green": "#008000", "greenyellow": "#adff2f", "grey": "#808080", "honeydew": "#f0fff0",
    "hotpink": "#ff69b4", "indianred": "#cd5c5c", "indigo": "#4b0082", "ivory": "#fffff0",
    "khaki": "#f0e68c", "lavender": "#e6e6fa", "lavenderblush": "#fff0f5",
    "lawngreen": "#7cfc00", "lemonchiffon": "#fffacd", "lightblue": "#add8e6",
    "lightcoral": "#f08080", "lightcyan": "#e0ffff", "lightgoldenrodyellow": "#fafad2",
    "lightgray": "#d3d3d3", "lightgreen": "#90ee90", "lightgrey": "#d3d3d3",
    "lightpink": "#ffb6c1", "lightsalmon": "#ffa07a", "lightseagreen": "#20b2aa",
    "lightskyblue": "#87cefa", "lightslategray": "#778899", "lightslategrey": "#778899",
    "lightsteelblue": "#b0c4de", "lightyellow": "#ffffe0", "lime": "#00ff00",
    "limegreen": "#32cd32", "linen": "#faf0e6", "magenta": "#ff00ff", "maroon": "#800000",
    "mediumaquamarine": "#66cdaa", "mediumblue": "#0000cd", "mediumorchid": "#ba55d3",
    "mediumpurple": "#9370db", "mediumseagreen": "#3cb371", "mediumslateblue": "#7b68ee",
    "mediumspringgreen": "#00fa9a", "mediumturquoise": "#48d1cc",
    "mediumvioletred": "#c71585", "midnightblue": "#191970", "mintcream": "#f5fffa",
    "mistyrose": "#ffe4e1", "moccasin": "#ffe4b5", "navajowhite": "#ffdead",
    "navy": "#000080", "oldlace": "#fdf5e6", "olive": "#808000", "olivedrab": "#6b8e23",
    "orange": "#ffa500", "orangered": "#ff4500", "orchid": "#da70d6",
    "palegoldenrod": "#eee8aa", "palegreen": "#98fb98", "paleturquoise": "#afeeee",
    "palevioletred": "#db7093", "papayawhip": "#ffefd5", "peachpuff": "#ffdab9",
    "peru": "#cd853f", "pink": "#ffc0cb", "plum": "#dda0dd", "powderblue": "#b0e0e6",
    "purple": "#800080", "rebeccapurple": "#663399", "red": "#ff0000",
    "rosybrown": "#bc8f8f", "royalblue": "#4169e1", "saddlebrown": "#8b4513",
    "salmon": "#fa8072", "sandybrown": "#f4a460", "seagreen": "#2e8b57",
    "seashell": "#fff5ee", "sienna": "#a0522d", "silver": "#c0c0c0", "skyblue": "#87ceeb",
    "slateblue": "#6a5acd", "slategray": "#708090", "slategrey": "#708090", "snow": "#fffafa",
    "springgreen": "#00ff7f", "steelblue": "#4682b4", "tan": "#d2b48c", "teal": "#008080",
    "thistle": "#d8bfd8", "tomato": "#ff6347", "turquoise": "#40e0d0", "violet": "#ee82ee",
    "wheat": "#f5deb3", "white": "#ffffff", "whitesmoke": "#f5f5f5", "yellow": "#ffff00",
    "yellowgreen": "#9acd32",
}  # fmt: skip


def dominant_colors(
    image: np.ndarray, mask: np.ndarray, max_colors: int = 5
) -> list[DominantColor]:
    """The clothing's dominant colours, largest share first.

    `image` is RGB uint8 (H, W, 3) or greyscale (H, W); `mask` is bool or uint8 (H, W), nonzero
    where the pixel is clothing. Only masked pixels are clustered. An empty mask gives []."""
    if max_colors < 1:
        raise ValueError(f"max_colors must be at least 1, got {max_colors}")
    pixels = _sample_masked_pixels(_as_rgb(image), mask)
    if len(pixels) == 0:
        return []
    lab = rgb_to_lab(pixels)
    labels = _cluster(lab, _cluster_count(pixels, max_colors))
    groups = _merge_close_clusters(lab, labels)
    centres, fractions = _keep_substantial(lab, groups)
    return [
        _describe(centre, fraction)
        for centre, fraction in sorted(zip(centres, fractions, strict=True), key=lambda c: -c[1])
    ]


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of sRGB uint8 colours, shape (..., 3) -> float (..., 3)."""
    pixels = np.asarray(rgb, dtype=np.float32).reshape(-1, 1, 3) / 255
    return cv2.cvtColor(pixels, cv2.COLOR_RGB2Lab).reshape(np.shape(rgb)).astype(np.float64)


def lab_to_rgb(lab: np.ndarray) -> tuple[int, int, int]:
    """The sRGB uint8 colour of one CIELAB colour (clipped into the sRGB gamut)."""
    pixel = np.asarray(lab, dtype=np.float32).reshape(1, 1, 3)
    rgb = np.clip(cv2.cvtColor(pixel, cv2.COLOR_Lab2RGB).reshape(3) * 255, 0, 255)
    red, green, blue = (int(round(value)) for value in rgb)
    return red, green, blue


def delta_e_2000(lab1: np.ndarray, lab2: np.ndarray, lightness_weight: float = 1.0) -> np.ndarray:
    """CIEDE2000 colour difference between CIELAB colours (broadcasting over leading axes),
    after Sharma, Wu and Dalal (2005). `lightness_weight` is the parametric factor kL."""
    lab1, lab2 = np.asarray(lab1, dtype=np.float64), np.asarray(lab2, dtype=np.float64)
    l1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    l2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]
    chroma_mean = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(chroma_mean**7 / (chroma_mean**7 + 25.0**7)))
    a1, a2 = a1 * (1 + g), a2 * (1 + g)
    c1, c2 = np.hypot(a1, b1), np.hypot(a2, b2)
    h1 = np.degrees(np.arctan2(b1, a1)) % 360
    h2 = np.degrees(np.arctan2(b2, a2)) % 360
    chromatic = (c1 * c2) != 0

    dh = h2 - h1
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(chromatic, dh, 0)
    d_l, d_c = l2 - l1, c2 - c1
    d_h = 2 * np.sqrt(c1 * c2) * np.sin(np.radians(dh / 2))

    l_mean, c_mean = (l1 + l2) / 2, (c1 + c2) / 2
    h_sum = h1 + h2
    h_mean = np.where(
        np.abs(h1 - h2) <= 180, h_sum / 2, (h_sum + np.where(h_sum < 360, 360, -360)) / 2
    )
    h_mean = np.where(chromatic, h_mean, h_sum)

    t = (
        1
        - 0.17 * np.cos(np.radians(h_mean - 30))
        + 0.24 * np.cos(np.radians(2 * h_mean))
        + 0.32 * np.cos(np.radians(3 * h_mean + 6))
        - 0.20 * np.cos(np.radians(4 * h_mean - 63))
    )
    rotation = 30 * np.exp(-(((h_mean - 275) / 25) ** 2))
    r_c = 2 * np.sqrt(c_mean**7 / (c_mean**7 + 25.0**7))
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / np.sqrt(20 + (l_mean - 50) ** 2)
    s_c = 1 + 0.045 * c_mean
    s_h = 1 + 0.015 * c_mean * t
    r_t = -np.sin(np.radians(2 * rotation)) * r_c
    term_l, term_c, term_h = d_l / (lightness_weight * s_l), d_c / s_c, d_h / s_h
    return np.sqrt(term_l**2 + term_c**2 + term_h**2 + r_t * term_c * term_h)


def nearest_css_name(lab: np.ndarray) -> str:
    """The CSS named colour perceptually closest (delta E 2000) to one CIELAB colour."""
    names, table = _css_lab()
    return names[int(np.argmin(delta_e_2000(table, lab)))]


@cache
def _css_lab() -> tuple[tuple[str, ...], np.ndarray]:
    names = tuple(CSS_COLORS)
    rgb = np.array([_hex_to_rgb(CSS_COLORS[name]) for name in names], dtype=np.uint8)
    return names, rgb_to_lab(rgb)


def _hex_to_rgb(hex_color: str) -> tuple[int, int, int]:
    return int(hex_color[1:3], 16), int(hex_color[3:5], 16), int(hex_color[5:7], 16)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[..., np.newaxis], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ValueError(f"expected an RGB (H, W, 3) or greyscale (H, W) image, got {image.shape}")


def _sample_masked_pixels(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Up to SAMPLE_SIZE clothing pixels (N, 3), drawn uniformly from the mask."""
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask {mask.shape} does not match image {image.shape[:2]}")
    indices = np.flatnonzero(mask)
    if len(indices) > SAMPLE_SIZE:
        rng = np.random.default_rng(SEED)
        indices = np.sort(rng.choice(indices, SAMPLE_SIZE, replace=False))
    return image.reshape(-1, 3)[indices]


def _cluster_count(pixels: np.ndarray, max_colors: int) -> int:
    """KMeans cannot find more clusters than there are distinct colours (flat artwork)."""
    packed = pixels.astype(np.uint32) @ np.array([1 << 16, 1 << 8, 1], dtype=np.uint32)
    return min(max_colors, len(np.unique(packed)))


def load_models() -> None:
    """scikit-learn, imported at the colors function's init (functions/colors/app.py) and not
    with this module: skin and calibration use its colour maths alone, and the import was 1.5 s
    of their cold starts."""
    import sklearn.cluster  # noqa: F401


def _cluster(lab: np.ndarray, count: int) -> np.ndarray:
    """Each pixel's cluster label. Fits `count` clusters; merging then removes the surplus."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    kmeans = KMeans(n_clusters=count, n_init=3, random_state=SEED)
    # One thread: 20k points take ~40 ms, while OpenMP threads contending for busy or
    # fractional vCPUs (Lambda) took 0.2-1.1 s in measurements.
    with threadpool_limits(limits=1):
        return kmeans.fit_predict(lab)


def _merge_close_clusters(lab: np.ndarray, labels: np.ndarray) -> list[np.ndarray]:
    """Index arrays of the merged clusters: the closest pair of cluster centres (textile
    delta E 2000) is merged while it is below MERGE_DELTA_E."""
    groups = [np.flatnonzero(labels == label) for label in np.unique(labels)]
    while len(groups) > 1:
        centres = np.array([lab[group].mean(axis=0) for group in groups])
        distances = delta_e_2000(
            centres[:, np.newaxis], centres[np.newaxis], TEXTILE_LIGHTNESS_WEIGHT
        )
        np.fill_diagonal(distances, np.inf)
        first, second = np.unravel_index(np.argmin(distances), distances.shape)
        if distances[first, second] >= MERGE_DELTA_E:
            break
        merged = np.concatenate([groups[first], groups[second]])
        groups = [g for i, g in enumerate(groups) if i not in (first, second)] + [merged]
    return groups


def _keep_substantial(
    lab: np.ndarray, groups: list[np.ndarray]
) -> tuple[list[np.ndarray], list[float]]:
    """Centres and renormalised shares of the groups holding at least MIN_FRACTION of the
    pixels; the largest group always stays, so a mask never comes back colourless."""
    total = sum(len(group) for group in groups)
    largest = max(len(group) for group in groups)
    kept = [g for g in groups if len(g) / total >= MIN_FRACTION or len(g) == largest]
    kept_total = sum(len(group) for group in kept)
    return [lab[group].mean(axis=0) for group in kept], [len(g) / kept_total for g in kept]


def _describe(centre: np.ndarray, fraction: float) -> DominantColor:
    rgb = lab_to_rgb(centre)
    # Named from the reported sRGB value, so the name always describes the hex shown with it.
    return DominantColor(
        hex="#{:02x}{:02x}{:02x}".format(*rgb),
        rgb=rgb,
        fraction=fraction,
        name=nearest_css_name(rgb_to_lab(np.array(rgb, dtype=np.uint8))),
    )
