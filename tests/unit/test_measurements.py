"""Body measurements on drawn figures of known geometry (widths, depths and lengths come out
to the pixel, centimetres follow the scale, circumferences follow the ellipse) and, for sanity
only, on a real photo through the pose stage."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pytest
from PIL import Image
from scipy.special import ellipe

from silhouette.vision.measurements import (
    CIRCUMFERENCES,
    DEPTHS,
    MEASUREMENT_NAMES,
    NO_SCALE,
    NO_SIDE_VIEW,
    BodyView,
    measure_body,
    measure_stature,
    scale_from_card,
    scale_from_height,
)
from silhouette.vision.types import LANDMARK_NAMES, Keypoint

# A standing figure, drawn row by row. Heights are shares of the figure's height from the top
# of its head (about where a person's parts are); widths and depths are in pixels.
LAYOUT = {
    "head": 0.13,  # the head's height; the head is a circle
    "neck": 0.12,
    "shoulder_top": 0.165,
    "shoulder": 0.19,  # the shoulder keypoints' row
    "elbow": 0.37,
    "hip": 0.48,  # the hip keypoints' row
    "wrist": 0.49,
    "crotch": 0.53,
    "hand": 0.56,
    "knee": 0.72,
    "ankle": 0.95,
    "heel": 0.975,
    "toe": 0.99,
}
# Torso levels as shares of the way from the shoulder to the hip keypoints: the chest where the
# measurement's definition puts it, the waist and the widest hip where the figure has them.
CHEST, WAIST, HIP = 0.25, 0.62, 1.1
FRONT = {
    "height": 900,
    "top": 50,
    "size": (1000, 640),  # rows, columns
    "centre": 320,
    "squeeze": 1.0,  # <1: the body turned away from the camera (every x offset shrinks)
    "shoulder_width": 200,
    "chest_width": 150,
    "waist_width": 124,
    "hip_width": 170,
    "arm_width": 30,
    # How far the elbow, wrist and hand lie out from the shoulder keypoint.
    "elbow_out": 50,
    "wrist_out": 60,
    "hand_out": 62,
    "ankle_apart": 60,  # ankle from the midline
    "leg_gap": 6,  # the gap between the legs at the crotch
}
SIDE = {
    "height": 860,
    "top": 80,
    "size": (1000, 600),
    "centre": 280,
    "chest_depth": 120,
    "waist_depth": 100,
    "hip_depth": 130,
    "shoulder_depth": 110,
    "arm_width": 30,
    "elbow_forward": 8,
    "wrist_forward": 16,
    "hand_forward": 20,
    "shoulders_apart": 4,
}


@dataclass(frozen=True)
class Figure:
    mask: np.ndarray
    keypoints: list[Keypoint]
    truth: dict[str, float]  # the drawn geometry, in pixels

    def view(self, **scale) -> BodyView:
        return BodyView(self.mask, self.keypoints, **scale)


class Canvas:
    """Rows of a mask filled with horizontal runs, and keypoints placed on it."""

    def __init__(self, params: dict):
        self.p = params
        self.mask = np.zeros(params["size"], bool)
        self.points: dict[str, tuple[float, float]] = {}

    def y(self, part: str | float) -> float:
        share = LAYOUT[part] if isinstance(part, str) else part
        return self.p["top"] + share * self.p["height"]

    def x(self, offset: float) -> float:
        return self.p["centre"] + self.p.get("squeeze", 1.0) * offset

    def level(self, share: float) -> float:
        return self.y("shoulder") + share * (self.y("hip") - self.y("shoulder"))

    def fill(self, row: int, left: float, right: float) -> None:
        self.mask[row, max(0, round(left)) : max(0, round(right))] = True

    def rows(self, start: float, stop: float) -> range:
        return range(round(start), round(stop))

    def head(self, centre_x: float) -> None:
        radius = LAYOUT["head"] * self.p["height"] / 2
        centre_y = self.p["top"] + radius
        for row in self.rows(self.p["top"], self.p["top"] + 2 * radius):
            half = math.sqrt(max(0.0, radius**2 - (row + 0.5 - centre_y) ** 2))
            self.fill(row, centre_x - half, centre_x + half)

    def profile(self, start: float, stop: float, ys: list[float], lefts: list, rights: list):
        """Fill rows start..stop between edges interpolated through (ys, lefts / rights)."""
        for row in self.rows(start, stop):
            self.fill(row, np.interp(row, ys, lefts), np.interp(row, ys, rights))

    def band(self, start: float, stop: float, left: float, right: float) -> None:
        """Fill rows start..stop between two fixed columns."""
        for row in self.rows(start, stop):
            self.fill(row, left, right)

    def limb(self, points: list[tuple[float, float]], width: float) -> None:
        """An arm: runs `width` wide centred on the polyline through `points`."""
        for (x1, y1), (x2, y2) in zip(points, points[1:], strict=False):
            for row in self.rows(y1, y2):
                x = x1 + (row - y1) / (y2 - y1) * (x2 - x1)
                self.fill(row, x - width / 2, x + width / 2)

    def keypoints(self) -> list[Keypoint]:
        rows, columns = self.mask.shape
        return [
            Keypoint(name, x, y, x / columns, y / rows, 0.0, 0.99)
            for name in LANDMARK_NAMES
            for x, y in [self.points[name]]
        ]


def front_figure(**changes) -> Figure:
    """A figure facing the camera, arms hanging a little away from the torso."""
    p = FRONT | changes
    c = Canvas(p)
    h, arm = p["height"], p["arm_width"]
    c.head(c.x(0))
    neck = 0.035 * h
    c.band(c.y("neck"), c.y("shoulder_top"), c.x(-neck), c.x(neck))
    levels = [c.y("shoulder_top"), c.y("shoulder"), c.level(CHEST), c.level(WAIST)]
    levels += [c.level(HIP), c.y("crotch")]
    halves = [p["shoulder_width"] / 2] * 2 + [p["chest_width"] / 2, p["waist_width"] / 2]
    halves += [p["hip_width"] / 2, 0.95 * p["hip_width"] / 2]
    c.profile(
        c.y("shoulder_top"),
        c.y("crotch"),
        levels,
        [c.x(-half) for half in halves],
        [c.x(half) for half in halves],
    )
    thigh, ankle, foot = 0.95 * p["hip_width"] / 2, p["ankle_apart"], 0.03 * h
    for sign, side in ((1, "left"), (-1, "right")):  # the person's left is the image's right
        ys = [c.y("crotch"), c.y("ankle")]
        inner = [c.x(sign * p["leg_gap"] / 2), c.x(sign * (ankle - foot))]
        outer = [c.x(sign * thigh), c.x(sign * (ankle + foot))]
        edges = (inner, outer) if sign > 0 else (outer, inner)
        c.profile(c.y("crotch"), c.y("ankle"), ys, *edges)
        c.band(c.y("ankle"), c.y(1.0), c.x(sign * ankle - foot), c.x(sign * ankle + foot))
        shoulder = p["shoulder_width"] / 2 - arm / 2
        joints = {
            "shoulder": shoulder,
            "elbow": shoulder + p["elbow_out"],
            "wrist": shoulder + p["wrist_out"],
            "hand": shoulder + p["hand_out"],
        }
        chain = [(c.x(sign * out), c.y(joint)) for joint, out in joints.items()]
        c.limb(chain, arm * p["squeeze"])
        for joint, point in zip(("shoulder", "elbow", "wrist"), chain, strict=False):
            c.points[f"{side}_{joint}"] = point
        for finger in ("pinky", "index", "thumb"):
            c.points[f"{side}_{finger}"] = chain[3]
        c.points[f"{side}_hip"] = (c.x(sign * 0.55 * p["hip_width"] / 2), c.y("hip"))
        knee_share = (LAYOUT["knee"] - LAYOUT["crotch"]) / (LAYOUT["ankle"] - LAYOUT["crotch"])
        leg_top = (p["leg_gap"] / 2 + thigh) / 2
        knee = leg_top + knee_share * (ankle - leg_top)
        c.points[f"{side}_knee"] = (c.x(sign * knee), c.y("knee"))
        c.points[f"{side}_ankle"] = (c.x(sign * ankle), c.y("ankle"))
        c.points[f"{side}_heel"] = (c.x(sign * ankle), c.y("heel"))
        c.points[f"{side}_foot_index"] = (c.x(sign * (ankle + 10)), c.y("toe"))
        eye = 0.02 * h
        for name, out in (("eye_inner", 0.6), ("eye", 1.0), ("eye_outer", 1.4)):
            c.points[f"{side}_{name}"] = (c.x(sign * eye * out), c.y(0.06))
        c.points[f"{side}_ear"] = (c.x(sign * 0.95 * LAYOUT["head"] * h / 2), c.y(0.065))
        c.points[f"mouth_{side}"] = (c.x(sign * 0.012 * h), c.y(0.095))
    c.points["nose"] = (c.x(0), c.y(0.075))
    shoulder_y, hip_y = c.y("shoulder"), c.y("hip")
    arm_length = sum(
        math.dist(c.points[f"left_{a}"], c.points[f"left_{b}"])
        for a, b in (("shoulder", "elbow"), ("elbow", "wrist"))
    )
    truth = {
        "height": h,
        "shoulder_width": p["shoulder_width"] * p["squeeze"],
        "chest_width": p["chest_width"] * p["squeeze"],
        "waist_width": p["waist_width"] * p["squeeze"],
        "hip_width": p["hip_width"] * p["squeeze"],
        "torso_length": hip_y - shoulder_y,
        "inseam": c.y("heel") - round(c.y("crotch")),
        "arm_length": arm_length,
    }
    return Figure(c.mask, c.keypoints(), truth)


def side_figure(**changes) -> Figure:
    """The figure in profile, facing the image's right; the near arm hangs over the torso."""
    p = SIDE | changes
    c = Canvas(p)
    h, radius = p["height"], LAYOUT["head"] * p["height"] / 2
    c.head(c.x(0.01 * h))
    neck = 0.035 * h
    c.band(c.y("neck"), c.y("shoulder_top"), c.x(-neck), c.x(neck))
    levels = [c.y("shoulder_top"), c.y("shoulder"), c.level(CHEST), c.level(WAIST)]
    levels += [c.level(HIP), c.y("crotch")]
    depths = [p["shoulder_depth"]] * 2 + [p["chest_depth"], p["waist_depth"], p["hip_depth"]]
    depths += [0.9 * p["hip_depth"]]
    # The body's front lies 55% of its depth ahead of the midline, its back 45% behind.
    fronts, backs = [c.x(0.55 * d) for d in depths], [c.x(-0.45 * d) for d in depths]
    c.profile(c.y("shoulder_top"), c.y("crotch"), levels, backs, fronts)
    ankle = 0.03 * h
    legs = [c.y("crotch"), c.y("ankle")]
    c.profile(*legs, legs, [backs[-1], c.x(-ankle)], [fronts[-1], c.x(ankle)])
    c.band(c.y("ankle"), c.y(1.0), c.x(-ankle), c.x(0.1 * h))  # the foot points forward
    chain = [
        (c.x(0), c.y("shoulder")),
        (c.x(p["elbow_forward"]), c.y("elbow")),
        (c.x(p["wrist_forward"]), c.y("wrist")),
        (c.x(p["hand_forward"]), c.y("hand")),
    ]
    c.limb(chain, p["arm_width"])
    for sign, side in ((1, "left"), (-1, "right")):
        apart = sign * p["shoulders_apart"] / 2
        c.points[f"{side}_shoulder"] = (chain[0][0] + apart, chain[0][1])
        c.points[f"{side}_elbow"], c.points[f"{side}_wrist"] = chain[1], chain[2]
        for finger in ("pinky", "index", "thumb"):
            c.points[f"{side}_{finger}"] = chain[3]
        c.points[f"{side}_hip"] = (c.x(0), c.y("hip"))
        c.points[f"{side}_knee"] = (c.x(0.01 * h), c.y("knee"))
        c.points[f"{side}_ankle"] = (c.x(0), c.y("ankle"))
        c.points[f"{side}_heel"] = (c.x(-0.02 * h), c.y("heel"))
        c.points[f"{side}_foot_index"] = (c.x(0.09 * h), c.y("toe"))
        for name in ("eye_inner", "eye", "eye_outer"):
            c.points[f"{side}_{name}"] = (c.x(0.01 * h + 0.8 * radius), c.y(0.06))
        c.points[f"{side}_ear"] = (c.x(-0.005 * h), c.y(0.065))
        c.points[f"mouth_{side}"] = (c.x(0.01 * h + 0.85 * radius), c.y(0.095))
    c.points["nose"] = (c.x(0.01 * h + radius), c.y(0.075))
    truth = {name: p[name] for name in DEPTHS} | {"height": h}
    return Figure(c.mask, c.keypoints(), truth)


def cropped(figure: Figure, rows: int) -> Figure:
    """The figure's photo cut off below `rows` (keypoints below it fall outside the photo)."""
    mask = figure.mask[:rows]
    columns = mask.shape[1]
    keypoints = [replace(k, nx=k.x / columns, ny=k.y / rows) for k in figure.keypoints]
    return Figure(mask, keypoints, figure.truth)


def exact_perimeter(a: float, b: float) -> float:
    major, minor = max(a, b), min(a, b)
    return 4 * major * ellipe(1 - (minor / major) ** 2)


def ramanujan(a: float, b: float) -> float:
    h = ((a - b) / (a + b)) ** 2
    return math.pi * (a + b) * (1 + 3 * h / (10 + math.sqrt(4 - 3 * h)))


FRONT_LENGTHS = ("shoulder_width", "chest_width", "waist_width", "hip_width")
FRONT_LENGTHS += ("torso_length", "inseam", "arm_length")


# --- pixel geometry -------------------------------------------------------------------------------


def test_front_widths_and_lengths_come_out_to_the_pixel():
    figure = front_figure()
    result = measure_body(figure.view(cm_per_px=0.2, scale_error=0.02))
    for name in FRONT_LENGTHS:
        measured = result.get(name)
        assert measured.status == "ok", (name, measured.reason)
        assert measured.value_px == pytest.approx(figure.truth[name], abs=2), name
        assert measured.value_cm == pytest.approx(measured.value_px * 0.2), name


def test_side_depths_come_out_to_the_pixel_at_the_front_views_levels():
    front, side = front_figure(), side_figure()
    result = measure_body(front.view(cm_per_px=0.2), side.view(cm_per_px=0.25))
    for name in DEPTHS:
        measured = result.get(name)
        assert measured.status == "ok", (name, measured.reason)
        assert measured.value_px == pytest.approx(side.truth[name], abs=2), name
        assert measured.value_cm == pytest.approx(measured.value_px * 0.25), name
        assert all(line.view == "side" for line in measured.lines)


def test_lines_are_drawn_where_the_widths_are_measured():
    figure = front_figure()
    chest = measure_body(figure.view()).get("chest_width")
    (line,) = chest.lines
    (x1, y1), (x2, y2) = line.start, line.end
    assert line.view == "front" and y1 == y2
    assert x2 - x1 == pytest.approx(chest.value_px)
    row = figure.mask[round(y1)]
    assert row[round(x1)] and row[round(x2) - 1]  # the ends are the torso's edge pixels
    assert not row[round(x1) - 1] and not row[round(x2)]


def test_circumferences_are_ellipses_on_the_width_and_depth():
    front, side = front_figure(), side_figure()
    front_scale, side_scale = 0.2, 0.25
    result = measure_body(front.view(cm_per_px=front_scale), side.view(cm_per_px=side_scale))
    for name, (width, depth, _) in CIRCUMFERENCES.items():
        a = front.truth[width] * front_scale / 2
        b = side.truth[depth] * side_scale / 2
        exact = exact_perimeter(a, b)
        assert abs(ramanujan(a, b) - exact) / exact < 1e-4, name  # the approximation's error
        measured = result.get(name)
        a_seen = result.get(width).value_cm / 2
        b_seen = result.get(depth).value_cm / 2
        assert measured.value_cm == pytest.approx(exact_perimeter(a_seen, b_seen), rel=1e-4)
        # Off by no more than 2 px on either axis.
        assert measured.value_cm == pytest.approx(exact, abs=math.pi * 2 * side_scale)
        assert measured.error_cm > 0.03 * measured.value_cm  # the model error is in the band
        assert {line.view for line in measured.lines} == {"front", "side"}


def test_twice_as_wide_a_figure_measures_twice_as_wide():
    widths = ("shoulder_width", "chest_width", "waist_width", "hip_width")
    base = front_figure()
    wide = front_figure(**{name: 1.3 * FRONT[name] for name in widths})
    small = measure_body(base.view(cm_per_px=0.2))
    large = measure_body(wide.view(cm_per_px=0.2))
    for name in widths:
        ratio = large.get(name).value_cm / small.get(name).value_cm
        assert ratio == pytest.approx(1.3, abs=0.03), name
    assert large.get("torso_length").value_cm == pytest.approx(small.get("torso_length").value_cm)


# --- scales ---------------------------------------------------------------------------------------


def test_height_scale_recovers_the_drawn_height():
    for height in (900, 700):
        figure = front_figure(height=height)
        stature = measure_stature(figure.mask, figure.keypoints)
        assert stature.pixels == pytest.approx(height, abs=1)
        scale = scale_from_height(figure.mask, figure.keypoints, 175.0)
        assert scale.source == "height"
        assert scale.cm_per_px == pytest.approx(175.0 / height, rel=2 / height)
        assert 0.01 < scale.relative_error < 0.05


def test_the_same_person_drawn_at_two_sizes_measures_the_same_with_a_height():
    sizes = ("shoulder_width", "chest_width", "waist_width", "hip_width", "arm_width")
    sizes += ("elbow_out", "wrist_out", "hand_out", "ankle_apart")
    small = front_figure(height=700, **{name: FRONT[name] * 700 / 900 for name in sizes})
    large = front_figure()
    a = measure_body(small.view(), height_cm=180.0)
    b = measure_body(large.view(), height_cm=180.0)
    for name in FRONT_LENGTHS:
        assert a.get(name).value_cm == pytest.approx(b.get(name).value_cm, rel=0.03), name
    expected = FRONT["hip_width"] / FRONT["height"] * 180.0
    assert a.get("hip_width").value_cm == pytest.approx(expected, rel=0.02)


def test_height_scale_needs_the_feet():
    figure = cropped(front_figure(), round(FRONT["top"] + 0.9 * FRONT["height"]))
    reason = measure_stature(figure.mask, figure.keypoints)
    assert isinstance(reason, str) and "feet" in reason
    assert scale_from_height(figure.mask, figure.keypoints, 175.0) is None
    result = measure_body(figure.view(), height_cm=175.0)
    assert result.scale is None
    chest = result.get("chest_width")
    assert chest.status == "missing" and chest.value_cm is None and "feet" in chest.reason
    assert chest.value_px == pytest.approx(FRONT["chest_width"], abs=2)
    assert any("feet" in note for note in result.notes)


def test_heel_keypoints_stand_in_for_a_sole_the_mask_does_not_show():
    figure = front_figure()
    mask = figure.mask.copy()
    mask[round(FRONT["top"] + LAYOUT["ankle"] * FRONT["height"]) :] = False  # no feet
    stature = measure_stature(mask, figure.keypoints)
    assert any("heel" in note for note in stature.notes)
    lowest_foot = max(k.y for k in figure.keypoints if k.name.endswith(("heel", "foot_index")))
    assert stature.sole[1] > lowest_foot  # the heel keypoint is above the floor
    assert stature.pixels == pytest.approx(FRONT["height"], rel=0.01)
    assert stature.relative_error > measure_stature(figure.mask, figure.keypoints).relative_error


def test_bent_knees_widen_the_height_error_and_lower_the_confidence():
    straight = front_figure()
    bent_points = [
        replace(k, x=k.x + 60 * (1 if k.name.startswith("left") else -1))
        if k.name.endswith("_knee")
        else k
        for k in straight.keypoints
    ]
    bent = Figure(straight.mask, bent_points, straight.truth)
    a = measure_stature(straight.mask, straight.keypoints)
    b = measure_stature(bent.mask, bent.keypoints)
    assert b.relative_error > a.relative_error
    assert any("knees" in note for note in b.notes)
    assert measure_body(bent.view()).confidence < measure_body(straight.view()).confidence


def test_card_scale_is_exact_at_the_card_and_less_sure_away_from_the_torso():
    keypoints = front_figure().keypoints
    by_name = {k.name: k for k in keypoints}
    middle = (by_name["left_shoulder"].y + by_name["left_hip"].y) / 2
    at_chest = scale_from_card(0.8, middle, keypoints)
    at_feet = scale_from_card(0.8, middle + 600, keypoints)
    assert at_chest.cm_per_px == pytest.approx(0.08) and at_chest.source == "card"
    assert at_feet.relative_error > at_chest.relative_error >= 0.03


def test_no_scale_keeps_pixels_and_says_why():
    result = measure_body(front_figure().view())
    assert result.scale is None
    for name in FRONT_LENGTHS:
        measured = result.get(name)
        assert measured.status == "missing" and measured.value_cm is None
        assert measured.reason == NO_SCALE and measured.value_px > 0


def test_a_card_in_the_front_view_scales_the_side_view_through_the_height():
    front, side = front_figure(), side_figure()
    result = measure_body(front.view(cm_per_px=0.2, scale_error=0.02), side.view())
    person_cm = FRONT["height"] * 0.2
    assert result.side_scale.cm_per_px == pytest.approx(person_cm / SIDE["height"], rel=0.005)
    assert result.side_scale.relative_error > 0.02
    waist = result.get("waist_depth")
    assert waist.value_cm == pytest.approx(SIDE["waist_depth"] * person_cm / SIDE["height"], abs=1)


# --- missing views and poses ----------------------------------------------------------------------


def test_no_side_view_leaves_depths_and_circumferences_missing():
    with_side = measure_body(front_figure().view(), side_figure().view(), height_cm=175.0)
    result = measure_body(front_figure().view(), height_cm=175.0)
    for name in (*DEPTHS, *CIRCUMFERENCES):
        assert result.get(name).status == "missing"
        assert result.get(name).reason == NO_SIDE_VIEW
        assert with_side.get(name).status == "ok"
    assert result.side_scale is None
    assert result.confidence < with_side.confidence
    assert [m.name for m in result.measurements] == list(MEASUREMENT_NAMES)


def test_arms_touching_the_torso_are_cut_away_with_a_wider_error():
    apart = front_figure()
    touching = front_figure(elbow_out=-8, wrist_out=8, hand_out=12)  # arms along the sides
    a = measure_body(apart.view(cm_per_px=0.2))
    b = measure_body(touching.view(cm_per_px=0.2))
    for name in ("chest_width", "waist_width"):
        width, truth = b.get(name), touching.truth[name]
        (line,) = width.lines
        row = touching.mask[round(line.start[1])]
        assert row[round(line.end[0]) : round(line.end[0]) + FRONT["arm_width"]].all(), name
        assert width.error_px > a.get(name).error_px, name
        assert abs(width.value_px - truth) < 2 * width.error_px, name
        assert "arm" in width.method
    assert any("arm touches the torso" in note for note in b.notes)
    assert b.confidence < a.confidence


def test_an_arm_in_front_of_the_body_in_the_side_view_is_cut_away():
    front = front_figure()
    side = side_figure(elbow_forward=60, wrist_forward=75, hand_forward=80)
    result = measure_body(front.view(cm_per_px=0.2), side.view(cm_per_px=0.2))
    plain = measure_body(front.view(cm_per_px=0.2), side_figure().view(cm_per_px=0.2))
    waist = result.get("waist_depth")
    assert abs(waist.value_px - SIDE["waist_depth"]) < 2 * waist.error_px
    assert waist.error_px > plain.get("waist_depth").error_px
    assert any("side view" in note and "arm" in note for note in result.notes)


def test_unseen_arms_widen_the_torso_errors():
    figure = front_figure()
    hidden = [
        replace(k, visibility=0.1) if k.name.split("_", 1)[-1] in {"elbow", "wrist"} else k
        for k in figure.keypoints
    ]
    seen = measure_body(figure.view())
    unseen = measure_body(BodyView(figure.mask, hidden))
    assert unseen.get("waist_width").error_px > seen.get("waist_width").error_px
    assert any("No arm is seen" in note for note in unseen.notes)


def test_a_turned_front_view_gives_no_widths():
    frontal = measure_body(front_figure().view(cm_per_px=0.2))
    turned = measure_body(front_figure(squeeze=0.5).view(cm_per_px=0.2))
    for name in ("shoulder_width", "chest_width", "waist_width", "hip_width"):
        assert turned.get(name).status == "missing"
        assert "not frontal" in turned.get(name).reason
    assert turned.get("torso_length").status == "ok"
    assert turned.confidence < frontal.confidence
    assert any("not frontal" in note for note in turned.notes)


def test_a_slightly_turned_front_view_keeps_its_widths_with_less_confidence():
    frontal = measure_body(front_figure().view(cm_per_px=0.2))
    turned = measure_body(front_figure(squeeze=0.8).view(cm_per_px=0.2))
    assert turned.get("chest_width").status == "ok"
    assert turned.confidence < frontal.confidence
    assert any("turned" in note for note in turned.notes)


def test_a_side_view_that_is_not_a_profile_gives_no_depths():
    front = front_figure().view(cm_per_px=0.2)
    result = measure_body(front, side_figure(shoulders_apart=150).view(cm_per_px=0.2))
    profile = measure_body(front, side_figure().view(cm_per_px=0.2))
    for name in DEPTHS:
        assert result.get(name).status == "missing"
        assert "not a profile" in result.get(name).reason
    assert result.confidence < profile.confidence


def test_hidden_hips_leave_the_torso_unmeasured():
    figure = front_figure()
    hidden = [
        replace(k, visibility=0.2) if k.name.endswith("_hip") else k for k in figure.keypoints
    ]
    result = measure_body(BodyView(figure.mask, hidden, cm_per_px=0.2))
    assert result.get("waist_width").reason == "hips not visible in the front view"
    assert result.get("shoulder_width").status == "ok"


def test_legs_together_give_no_inseam():
    figure = front_figure()
    centre, crotch = FRONT["centre"], round(FRONT["top"] + LAYOUT["crotch"] * FRONT["height"])
    # Thighs touching far below the crotch (or a coat's hem), legs together (or a skirt).
    for until, reason in ((0.65, "hide the crotch"), (1.0, "no gap between the legs")):
        mask = figure.mask.copy()
        mask[crotch : round(FRONT["top"] + until * FRONT["height"]), centre - 40 : centre + 40] = (
            True
        )
        inseam = measure_body(BodyView(mask, figure.keypoints, cm_per_px=0.2)).get("inseam")
        assert inseam.status == "missing" and reason in inseam.reason


def test_raised_arms_give_no_shoulder_width():
    figure = front_figure()
    raised = [
        replace(k, y=k.y - 150) if k.name.split("_", 1)[-1] in {"elbow", "wrist"} else k
        for k in figure.keypoints
    ]
    result = measure_body(BodyView(figure.mask, raised, cm_per_px=0.2))
    assert "arms raised" in result.get("shoulder_width").reason
    assert result.get("chest_width").status == "ok"


def test_uncertain_keypoints_lower_the_confidence():
    figure = front_figure()
    unsure = [replace(k, visibility=0.55) for k in figure.keypoints]
    sure = measure_body(figure.view(cm_per_px=0.2))
    result = measure_body(BodyView(figure.mask, unsure, cm_per_px=0.2))
    assert result.get("chest_width").status == "ok"
    assert result.confidence < sure.confidence
    assert any("uncertainly" in note for note in result.notes)


# --- a real photo ---------------------------------------------------------------------------------


def test_a_real_photo_gives_plausible_proportions(sample):
    from silhouette.vision.pose import estimate_pose

    photo = np.asarray(Image.open(sample.path("bus")).convert("RGB"))
    pose = estimate_pose(photo)
    result = measure_body(BodyView(pose.person_mask, pose.keypoints), height_cm=175.0)
    assert result.scale is not None
    height_px = 175.0 / result.scale.cm_per_px
    plausible = {
        "shoulder_width": (0.15, 0.35),
        "torso_length": (0.2, 0.4),
        "arm_length": (0.2, 0.45),
    }
    for name, (low, high) in plausible.items():
        measured = result.get(name)
        assert measured.status == "ok", (name, measured.reason)
        assert low < measured.value_px / height_px < high, name
