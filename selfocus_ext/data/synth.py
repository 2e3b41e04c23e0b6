"""Generated road scenes with exact lane ground truth.

A scene is a straight-to-curved road on a ground plane seen through a pinhole camera (height, pitch, focal
length, small yaw and roll). Lane lines are curves x(z) = offset + heading z + c0 z^2/2 + c1 z^3/6 on the
ground; projected, they converge toward the horizon. The renderer paints the road, its markings (solid
or dashed, white or yellow, narrowing with distance, anti-aliased) and the scenario's extras; the ground
truth is the same curves sampled on the frame's rows, in the frame's original pixel coordinates, whatever
the output size. Everything is a function of the seed: same seed, same pixels and labels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ..lanes.frames import Frame, get_frame

SCENARIOS = ("normal", "crowd", "hlight", "shadow", "noline", "arrow", "curve", "cross", "night")
# Images per scenario in CULane's test split (normal ... night): the default mix.
CULANE_TEST_MIX = {
    "normal": 9621, "crowd": 8113, "hlight": 486, "shadow": 930, "noline": 4067,
    "arrow": 890, "curve": 422, "cross": 3122, "night": 7029,
}


# ----------------------------------------------------------------------------------------------------------
# Scene description


@dataclass
class Camera:
    height: float  # m above the road
    pitch: float  # rad, positive looking down
    focal: float  # px, in the frame's original coordinates
    cx: float
    cy: float
    roll: float  # rad, image rotation about (cx, cy)
    lateral: float  # m, camera offset from the ego lane centre

    def horizon(self) -> float:
        return self.cy - self.focal * math.tan(self.pitch)


@dataclass
class LaneLine:
    offset: float  # m, lateral position at z = 0 (ego lane centre = 0)
    color: Tuple[int, int, int]  # RGB
    dashed: bool
    width: float  # m, paint width
    period: float  # m, dash period
    duty: float  # painted fraction of a period
    phase: float  # m
    paint: float  # paint opacity (low for worn lines)
    slot: Optional[int] = None  # 0..3: left-left, left, right, right-right of the ego lane; None: not labelled


@dataclass
class Scene:
    scenario: str
    frame: Frame
    camera: Camera
    lines: List[LaneLine]
    heading: float  # rad of the road relative to the camera (yaw)
    c0: float  # 1/m, curvature at z = 0
    c1: float  # 1/m^2, curvature change
    z_max: float  # m, how far the markings are visible
    labeled: bool  # False for crossroads: no lane ground truth
    road: Dict[str, float]  # appearance parameters
    extras: Dict[str, list] = field(default_factory=dict)  # scenario objects (vehicles, shadows, ...)
    seed: int = 0

    def lateral(self, z: np.ndarray, offset: float) -> np.ndarray:
        return offset + self.heading * z + self.c0 * z * z / 2 + self.c1 * z ** 3 / 6 - self.camera.lateral


# ----------------------------------------------------------------------------------------------------------
# Projection (frame coordinates)


def row_distance(cam: Camera, v: np.ndarray) -> np.ndarray:
    """Ground distance z of frame row v (NaN at and above the horizon)."""
    t = (np.asarray(v, dtype=np.float64) - cam.cy) / cam.focal
    s, c = math.sin(cam.pitch), math.cos(cam.pitch)
    den = t * c + s
    with np.errstate(divide="ignore", invalid="ignore"):
        z = cam.height * (c - t * s) / den
    return np.where((den > 1e-9) & (z > 0), z, np.nan)


def project(cam: Camera, x: np.ndarray, z: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Frame pixel (u, v) of ground point (x lateral, z forward), before roll."""
    s, c = math.sin(cam.pitch), math.cos(cam.pitch)
    zc = cam.height * s + z * c
    up = -cam.height * c + z * s
    return cam.cx + cam.focal * x / zc, cam.cy - cam.focal * up / zc


def apply_roll(cam: Camera, u: np.ndarray, v: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    cr, sr = math.cos(cam.roll), math.sin(cam.roll)
    du, dv = u - cam.cx, v - cam.cy
    return cam.cx + cr * du - sr * dv, cam.cy + sr * du + cr * dv


# ----------------------------------------------------------------------------------------------------------
# Sampling


def _choose_scenario(rng: np.random.Generator, mix: Optional[Dict[str, float]]) -> str:
    mix = mix or CULANE_TEST_MIX
    names = list(mix)
    w = np.array([mix[n] for n in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=w / w.sum()))]


def sample_scene(seed: int, frame: Union[str, Frame] = "culane", scenario: Optional[str] = None,
                 mix: Optional[Dict[str, float]] = None) -> Scene:
    """A random scene (deterministic for the seed). ``scenario`` fixes the scenario; otherwise it is drawn
    from ``mix`` (default: CULane's test proportions)."""
    frame = get_frame(frame)
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(seed) >> 32, 0x5CE7E])
    scenario = scenario or _choose_scenario(rng, mix)
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; expected one of {SCENARIOS}")
    W, H = frame.width, frame.height
    focal = W * rng.uniform(0.55, 0.7)
    horizon = H * rng.uniform(0.40, 0.47)
    cy = H * 0.5
    pitch = math.atan((cy - horizon) / focal)
    cam = Camera(height=rng.uniform(1.3, 1.8), pitch=pitch, focal=focal, cx=W * rng.uniform(0.47, 0.53), cy=cy,
                 roll=math.radians(rng.uniform(-1.5, 1.5)), lateral=rng.uniform(-0.5, 0.5))
    lane_w = rng.uniform(3.0, 3.9)
    # lines of the ego lane and its neighbours: 2 to 5 of the boundaries at k * lane_w - lane_w / 2
    n_lines = int(rng.integers(2, 6))
    first = -int(rng.integers(0, n_lines - 1)) - 1 if n_lines > 2 else -1
    ks = list(range(first, first + n_lines))
    if 0 not in ks or -1 not in ks:  # always keep both ego lines
        ks = list(range(-1, -1 + n_lines))
    lines = []
    for k in ks:
        ego = k in (-1, 0)
        yellow = (k == ks[0] and rng.uniform() < 0.25)
        dashed = (not (k == ks[0] or k == ks[-1])) or rng.uniform() < 0.3
        if ego and n_lines == 2:
            dashed = rng.uniform() < 0.5
        color = (int(rng.uniform(200, 230)), int(rng.uniform(170, 200)), int(rng.uniform(40, 90))) if yellow else \
            tuple(int(rng.uniform(215, 250)) for _ in range(3))
        lines.append(LaneLine(offset=(k + 0.5) * lane_w, color=color, dashed=bool(dashed),
                              width=rng.uniform(0.14, 0.24), period=rng.uniform(9, 15), duty=rng.uniform(0.35, 0.6),
                              phase=rng.uniform(0, 15), paint=rng.uniform(0.75, 1.0),
                              slot=k + 2 if -2 <= k <= 1 else None))
    curv_scale = 1 / 60 if scenario == "curve" else 1 / 400
    c0 = rng.uniform(-1, 1) * curv_scale * (1.0 if scenario == "curve" else rng.uniform(0, 1))
    if scenario == "curve" and abs(c0) < 1 / 150:
        c0 = math.copysign(1 / 150, c0 if c0 != 0 else 1.0)
    c1 = rng.uniform(-1, 1) * abs(c0) / 40
    road = dict(
        base=rng.uniform(80, 135), gradient=rng.uniform(0.0, 0.35), texture=rng.uniform(4, 14),
        tex_x=int(rng.integers(0, 1 << 16)), tex_y=int(rng.integers(0, 1 << 16)),
        shoulder=rng.uniform(0.8, 2.5), verge=rng.uniform(0, 1),
        sky_r=rng.uniform(120, 200), sky_g=rng.uniform(140, 210), sky_b=rng.uniform(170, 240),
    )
    scene = Scene(scenario=scenario, frame=frame, camera=cam, lines=lines, heading=math.radians(rng.uniform(-2, 2)),
                  c0=c0, c1=c1, z_max=rng.uniform(60, 110), labeled=scenario != "cross", road=road, seed=int(seed))
    _sample_extras(scene, rng, lane_w)
    return scene


def _sample_extras(scene: Scene, rng: np.random.Generator, lane_w: float) -> None:
    s = scene.scenario
    offsets = [l.offset for l in scene.lines]
    centres = [(a + b) / 2 for a, b in zip(offsets[:-1], offsets[1:])] or [0.0]
    if s == "crowd":
        # vehicles in the lanes and beside them, near enough to hide stretches of the lines
        slots = centres + [offsets[0] - lane_w / 2, offsets[-1] + lane_w / 2]
        scene.extras["vehicles"] = sorted(
            [dict(x=float(rng.choice(slots)) + rng.uniform(-1.0, 1.0), z=rng.uniform(6, 40), w=rng.uniform(1.7, 2.1),
                  h=rng.uniform(1.3, 1.9), rgb=[float(c) for c in rng.uniform(10, 200, 3)]) for _ in range(int(rng.integers(2, 6)))],
            key=lambda v: -v["z"])
    elif s == "hlight":
        scene.extras["glare"] = [dict(u=rng.uniform(0.2, 0.8), v=rng.uniform(0.3, 0.7), radius=rng.uniform(0.15, 0.35),
                                      gain=rng.uniform(150, 260))]
    elif s == "shadow":
        scene.extras["shadows"] = [dict(z0=rng.uniform(5, 30), length=rng.uniform(3, 15), dark=rng.uniform(0.3, 0.6),
                                        skew=rng.uniform(-0.3, 0.3)) for _ in range(int(rng.integers(1, 4)))]
    elif s == "noline":
        for line in scene.lines:
            line.paint = rng.uniform(0.0, 0.25) if rng.uniform() < 0.8 else rng.uniform(0.3, 0.5)
    elif s == "arrow":
        scene.extras["arrows"] = [dict(x=float(rng.choice(centres)), z=rng.uniform(6, 25), length=rng.uniform(3, 5),
                                       kind=int(rng.integers(0, 2))) for _ in range(int(rng.integers(1, 3)))]
    elif s == "cross":
        scene.extras["crosswalk"] = [dict(z0=rng.uniform(6, 14), depth=rng.uniform(3, 5), stripe=rng.uniform(0.4, 0.6))]
        for line in scene.lines:
            line.paint = 0.0  # longitudinal markings end at the crossing: none in view
    elif s == "night":
        scene.extras["night"] = [dict(light=rng.uniform(0.2, 0.4), noise=rng.uniform(5, 12), glow=rng.uniform(60, 120))]


# ----------------------------------------------------------------------------------------------------------
# Ground truth


def lane_points(scene: Scene, line: LaneLine, samples: int = 200) -> np.ndarray:
    """Dense (u, v) frame points of a lane line, near to far, within the frame (roll applied)."""
    cam = scene.camera
    v_far = float(project(cam, np.array([0.0]), np.array([scene.z_max]))[1][0])
    vs = np.linspace(scene.frame.height + 20, v_far, samples)
    z = row_distance(cam, vs)
    ok = np.isfinite(z) & (z > 0.5) & (z <= scene.z_max)
    z = z[ok]
    u, v = project(cam, scene.lateral(z, line.offset), z)
    u, v = apply_roll(cam, u, v)
    inside = (u >= 0) & (u <= scene.frame.width - 1) & (v >= 0) & (v <= scene.frame.height)
    return np.stack([u[inside], v[inside]], axis=1)


def ground_truth_slots(scene: Scene) -> np.ndarray:
    """[4, R] x values of the labelled lines by slot (left-left, left, right, right-right of the ego lane,
    the CULane convention: at most four lanes are annotated), NaN for empty slots. Worn lines keep their
    labels; crossroads have none."""
    from ..lanes.laneset import resample_points

    ys = scene.frame.ys
    out = np.full((4, ys.size), np.nan, np.float32)
    if not scene.labeled:
        return out
    for line in scene.lines:
        if line.slot is None:
            continue
        pts = lane_points(scene, line)
        if len(pts) < 2:
            continue
        xs = resample_points(pts, ys)
        if np.count_nonzero(~np.isnan(xs)) >= 2:
            out[line.slot] = xs
    return out


def ground_truth(scene: Scene) -> np.ndarray:
    """x of every labelled line on the frame's rows, [L, R] float32 (left to right, L <= 4), NaN where it
    has no point."""
    slots = ground_truth_slots(scene)
    return slots[~np.isnan(slots).all(axis=1)]


# ----------------------------------------------------------------------------------------------------------
# Rendering


@lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    """A fixed smooth noise texture shared by all scenes (scenes pick offsets into it)."""
    rng = np.random.default_rng(20261126)
    base = rng.normal(0, 1, (256, 256)).astype(np.float32)
    fine = cv2.GaussianBlur(base, (0, 0), 0.8)
    coarse = cv2.resize(cv2.GaussianBlur(rng.normal(0, 1, (64, 64)).astype(np.float32), (0, 0), 2.0), (256, 256))
    tex = fine * 0.7 + coarse * 1.6
    return np.tile(tex / tex.std(), (2, 2))


@dataclass
class Rendered:
    image: np.ndarray  # uint8 [h, w, 3] RGB
    paint: np.ndarray  # float32 [h, w], lane-paint coverage (before occlusion), for checks and debugging


def render(scene: Scene, size: Optional[Tuple[int, int]] = None, crop_top: float = 0.0) -> Rendered:
    """The scene as an RGB image of ``size`` = (width, height) covering frame rows [crop_top, height)
    (default: the whole frame at its own resolution)."""
    frame, cam, road = scene.frame, scene.camera, scene.road
    W, H = frame.width, frame.height
    out_w, out_h = size or (W, H - int(crop_top))
    if out_w <= 0 or out_h <= 0:
        raise ValueError(f"render: size must be positive, got {(out_w, out_h)}")
    if not 0 <= crop_top < H:
        raise ValueError(f"render: crop_top must be in [0, {H}), got {crop_top}")
    sx, sy = out_w / W, out_h / (H - crop_top)
    # frame coordinates of output pixel centres (roll is applied to the finished image)
    fv = crop_top + (np.arange(out_h, dtype=np.float32) + 0.5) / sy - 0.5
    fu = (np.arange(out_w, dtype=np.float32) + 0.5) / sx - 0.5
    z = row_distance(cam, fv).astype(np.float32)  # [h]
    ground = np.isfinite(z)
    zc = np.where(ground, cam.height * math.sin(cam.pitch) + z * math.cos(cam.pitch), np.nan).astype(np.float32)
    px_per_m = np.where(ground, cam.focal / zc * sx, 0).astype(np.float32)  # output px per metre at each row

    # road surface: base grey, darker with distance, texture that shrinks with distance
    zz = np.where(ground, z, 1e6)
    fade = np.clip(zz / 120.0, 0, 1)
    tex = _noise_bank()
    ty = ((np.where(ground, 40.0 / np.maximum(zz, 1.0), 0) * 60 + road["tex_y"]) % 256).astype(np.int32)
    tx = ((np.arange(out_w) * (256.0 / out_w) + road["tex_x"]) % 256).astype(np.int32)
    noise = tex[ty[:, None], tx[None, :]]
    lum = road["base"] * (1 - road["gradient"] * fade)[:, None] + road["texture"] * noise * (1 - fade)[:, None]

    # road edges and verge
    left_edge = scene.lines[0].offset - road["shoulder"]
    right_edge = scene.lines[-1].offset + road["shoulder"]
    u_left = _to_out_u(cam, sx, scene.lateral(np.where(ground, z, 0), left_edge), zc)
    u_right = _to_out_u(cam, sx, scene.lateral(np.where(ground, z, 0), right_edge), zc)
    cols = np.arange(out_w, dtype=np.float32)[None, :]
    on_road = (cols >= u_left[:, None]) & (cols <= u_right[:, None])
    img = np.empty((out_h, out_w, 3), np.float32)
    verge = np.array([90, 105, 70]) if road["verge"] < 0.6 else np.array([125, 115, 95])
    for ch in range(3):
        img[..., ch] = np.where(on_road, lum, verge[ch] * (1 - 0.3 * fade)[:, None] + 6 * noise)

    # markings
    paint_total = np.zeros((out_h, out_w), np.float32)
    for line in scene.lines:
        if line.paint <= 0:
            continue
        u = _to_out_u(cam, sx, scene.lateral(np.where(ground, z, 0), line.offset), zc)
        half = 0.5 * line.width * px_per_m
        cov = np.clip(half[:, None] + 0.5 - np.abs(cols - u[:, None]), 0, 1)
        visible = ground & (z <= scene.z_max)
        if line.dashed:
            visible &= ((np.where(ground, z, 0) + line.phase) % line.period) < line.duty * line.period
        cov *= visible[:, None] * line.paint
        paint_total = np.maximum(paint_total, cov)
        for ch in range(3):
            img[..., ch] += cov * (line.color[ch] - img[..., ch])

    # sky above the horizon
    sky = ~ground
    if sky.any():
        grad = np.linspace(0.85, 1.0, out_h, dtype=np.float32)[:, None]
        for ch, key in enumerate(("sky_r", "sky_g", "sky_b")):
            img[sky, :, ch] = (road[key] * grad[sky]).astype(np.float32)

    _render_extras(scene, img, cam, sx, sy, crop_top, z, ground)
    if abs(cam.roll) > 1e-6:
        centre_out = ((cam.cx + 0.5) * sx - 0.5, (cam.cy - crop_top + 0.5) * sy - 0.5)
        M = cv2.getRotationMatrix2D(centre_out, -math.degrees(cam.roll), 1.0)
        img = cv2.warpAffine(img, M, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        paint_total = cv2.warpAffine(paint_total, M, (out_w, out_h), flags=cv2.INTER_LINEAR)
    return Rendered(np.clip(img, 0, 255).astype(np.uint8), paint_total)


def _to_out_u(cam: Camera, sx: float, x: np.ndarray, zc: np.ndarray) -> np.ndarray:
    u = cam.cx + cam.focal * x / np.where(np.isfinite(zc), zc, 1.0)
    return np.where(np.isfinite(zc), (u + 0.5) * sx - 0.5, -1e6).astype(np.float32)


def _ground_poly(cam: Camera, scene: Scene, sx: float, sy: float, crop_top: float, xs, zs) -> np.ndarray:
    u, v = project(cam, np.asarray(xs, np.float64), np.asarray(zs, np.float64))
    return np.stack([(u + 0.5) * sx - 0.5, (v - crop_top + 0.5) * sy - 0.5], axis=1)


def _render_extras(scene: Scene, img: np.ndarray, cam: Camera, sx: float, sy: float, crop_top: float,
                   z: np.ndarray, ground: np.ndarray) -> None:
    h, w = img.shape[:2]
    ex = scene.extras
    for sh in ex.get("shadows", []):
        zz = np.where(ground, z, -1)
        band = (zz >= sh["z0"]) & (zz <= sh["z0"] + sh["length"])
        if band.any():
            cols = np.arange(w, dtype=np.float32)
            rows = np.nonzero(band)[0]
            shift = (sh["skew"] * (rows - rows.mean()) * 4)[:, None]
            edge = np.clip((cols[None, :] + shift) / w, 0, 1)
            factor = 1 - (1 - sh["dark"]) * (edge < 0.85)
            img[rows] *= factor[..., None]
    for a in ex.get("arrows", []):
        x, z0, L = a["x"], a["z"], a["length"]
        shaft = [(x - 0.12, z0), (x + 0.12, z0), (x + 0.12, z0 + L * 0.6), (x - 0.12, z0 + L * 0.6)]
        head = [(x - 0.45, z0 + L * 0.6), (x + 0.45, z0 + L * 0.6), (x, z0 + L)]
        for poly in (shaft, head):
            xs = [scene.lateral(np.array([p[1]]), p[0])[0] for p in poly]
            pts = _ground_poly(cam, scene, sx, sy, crop_top, xs, [p[1] for p in poly])
            cv2.fillPoly(img, [np.round(pts * 16).astype(np.int32)], (235, 235, 235), lineType=cv2.LINE_AA, shift=4)
    for cw in ex.get("crosswalk", []):
        left, right = scene.lines[0].offset - 1.0, scene.lines[-1].offset + 1.0
        x = left
        while x < right:
            zs = [cw["z0"], cw["z0"], cw["z0"] + cw["depth"], cw["z0"] + cw["depth"]]
            xs0 = [x, x + cw["stripe"], x + cw["stripe"], x]
            xs = [scene.lateral(np.array([zv]), xv)[0] for xv, zv in zip(xs0, zs)]
            pts = _ground_poly(cam, scene, sx, sy, crop_top, xs, zs)
            cv2.fillPoly(img, [np.round(pts * 16).astype(np.int32)], (240, 240, 240), lineType=cv2.LINE_AA, shift=4)
            x += 2 * cw["stripe"]
        stop = [(left, cw["z0"] - 1.0), (right, cw["z0"] - 1.0), (right, cw["z0"] - 0.6), (left, cw["z0"] - 0.6)]
        xs = [scene.lateral(np.array([p[1]]), p[0])[0] for p in stop]
        pts = _ground_poly(cam, scene, sx, sy, crop_top, xs, [p[1] for p in stop])
        cv2.fillPoly(img, [np.round(pts * 16).astype(np.int32)], (240, 240, 240), lineType=cv2.LINE_AA, shift=4)
    for v in ex.get("vehicles", []):
        xc = scene.lateral(np.array([v["z"]]), v["x"])[0]
        u0, v0 = project(cam, np.array([xc - v["w"] / 2]), np.array([v["z"]]))
        u1, _ = project(cam, np.array([xc + v["w"] / 2]), np.array([v["z"]]))
        px = cam.focal / (cam.height * math.sin(cam.pitch) + v["z"] * math.cos(cam.pitch))
        top = v0[0] - v["h"] * px
        p0 = (int(round((u0[0] + 0.5) * sx)), int(round((top - crop_top + 0.5) * sy)))
        p1 = (int(round((u1[0] + 0.5) * sx)), int(round((v0[0] - crop_top + 0.5) * sy)))
        cv2.rectangle(img, p0, p1, tuple(v["rgb"]), thickness=-1)
        glass = (p0[0] + (p1[0] - p0[0]) // 6, p0[1] + (p1[1] - p0[1]) // 8)
        glass2 = (p1[0] - (p1[0] - p0[0]) // 6, p0[1] + (p1[1] - p0[1]) // 2)
        cv2.rectangle(img, glass, glass2, (40, 50, 60), thickness=-1)
    for g in ex.get("glare", []):
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        d2 = ((xx / w - g["u"]) ** 2 + ((yy / h - g["v"]) * h / w) ** 2) / (g["radius"] ** 2)
        img += (g["gain"] * np.exp(-d2))[..., None]
    for n in ex.get("night", []):
        img *= n["light"]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        d2 = ((xx / w - 0.5) / 0.35) ** 2 + ((yy / h - 1.0) / 0.45) ** 2
        img += (n["glow"] * np.exp(-d2))[..., None] * np.array([1.0, 0.95, 0.8], np.float32)
        rng = np.random.default_rng(scene.seed ^ 0x9E3779B9)
        img += rng.normal(0, n["noise"], img.shape[:2]).astype(np.float32)[..., None]


# ----------------------------------------------------------------------------------------------------------
# Convenience


def segmentation(scene: Scene, size: Tuple[int, int], crop_top: float = 0.0, thickness: float = 16.0) -> np.ndarray:
    """Per-lane labels at ``size`` = (width, height): 0 background, i + 1 for ground-truth lane i (left to
    right), lanes drawn ``thickness`` px wide in frame pixels (scaled to the output)."""
    W, H = scene.frame.width, scene.frame.height
    out_w, out_h = size
    sx, sy = out_w / W, out_h / (H - crop_top)
    labels = np.zeros((out_h, out_w), np.uint8)
    ys = scene.frame.ys
    t = max(1, int(round(thickness * sx)))
    for i, xs in enumerate(ground_truth(scene)):
        keep = ~np.isnan(xs)
        pts = np.stack([(xs[keep] + 0.5) * sx - 0.5, (ys[keep] - crop_top + 0.5) * sy - 0.5], axis=1)
        cv2.polylines(labels, [np.round(pts).astype(np.int32)], False, int(i + 1), thickness=t)
    return labels


def generate(seed: int, frame: Union[str, Frame] = "culane", scenario: Optional[str] = None,
             size: Optional[Tuple[int, int]] = None, crop_top: float = 0.0, mix=None):
    """(image uint8 RGB, ground-truth xs [L, R] on the frame's rows, scene) for one seed."""
    scene = sample_scene(seed, frame, scenario, mix)
    return render(scene, size, crop_top).image, ground_truth(scene), scene


def scene_seeds(seed: int, n: int) -> List[int]:
    """n distinct per-scene seeds derived from one run seed."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0xDA7A])
    return [int(s) for s in rng.integers(0, 1 << 62, size=n)]


__all__ = ["SCENARIOS", "CULANE_TEST_MIX", "Scene", "sample_scene", "render", "ground_truth", "ground_truth_slots",
           "segmentation",
           "generate", "scene_seeds", "lane_points"]
