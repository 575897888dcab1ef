"""A procedural stand-in for the seed's "ToonVision" data set (shared/seed/FACTS.md of the project brief).

Why a generator: the seed's ~1,000 labelled game screenshots are not redistributable,
and the benchmark needs a data set that every searcher can rebuild bit for bit from a
seed, on a CPU, in a fraction of a second. The images imitate what made the seed's task
non-trivial:

* 4 suits (bossbot, lawbot, cashbot, sellbot) told apart by suit colour (brown, dark
  blue/purple, dark green, maroon) *and* texture (pinstripes, plain, check, plain).
  Hues overlap between suits once per-image white balance, lighting and suit-dye
  variation are applied, so no single pixel value separates the classes; texture
  carries part of the signal and the two plain suits must be told apart by colour.
* Tall 3:1 crops (height = 3 * width) with a cog of varied head, hands, pose, scale and
  position, sometimes partly occluded or cut by the frame.
* Backgrounds from 6 street styles, each with distractor colours and patterns that mimic
  another suit (brown vertical planks, maroon bricks, green hedges, navy night walls,
  check floors); the street is drawn with a per-suit imbalance (each suit is
  over-represented on one street).
* Labels are honest: every image shows exactly one cog of its labelled suit.

Everything is vectorised numpy. Geometry lives in "width units" (x in [0, 1), y in
[0, 3)), so any image size renders the same scene; sizes that are not 3:1 are stretched.
Per-image noise comes from a generator seeded by (seed, image index), so the output does
not depend on how the work is chunked.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bench.core.errors import UserError

CLASS_NAMES: tuple[str, ...] = ("bossbot", "lawbot", "cashbot", "sellbot")
STREET_NAMES: tuple[str, ...] = ("central", "dock", "gardens", "melody", "brrrgh", "dreamland")
# (height, width). 120x40 keeps textures (pinstripes ~4 px apart) resolvable while a
# 20-epoch trial on 600 images takes ~10-50 s on 2 shared CPU cores. Difficulty was
# tuned at this size with ``python -m bench calibrate --epochs 20`` (see that module).
DEFAULT_SIZE: tuple[int, int] = (120, 40)

# Suit dye in HSV (hue in degrees): centre and per-image spread. Neighbouring hues
# (brown/maroon, maroon/purple, green/brown-olive) overlap after white balance: a
# logistic regression on one suit pixel gets ~87% of the test split, not ~100%, so
# texture has to carry the rest. Brighter and more saturated than the game's suits:
# with the game's dark dyes the seed's tiny baseline barely leaves chance in 20 epochs.
_SUIT_HSV = np.array([
    # h,    s,    v
    [26.0, 0.72, 0.60],   # bossbot: brown
    [250.0, 0.68, 0.55],  # lawbot: dark blue / purple
    [135.0, 0.65, 0.50],  # cashbot: dark green
    [348.0, 0.72, 0.55],  # sellbot: maroon
], dtype=np.float32)
_SUIT_HUE_SD = np.array([20.0, 26.0, 26.0, 20.0], dtype=np.float32)

# Texture kinds: 0 plain, 1 vertical pinstripes, 2 check (plaid lines), 3 diagonal weave.
_SUIT_TEXTURE = np.array([1, 3, 2, 0])

# P(street | suit): each suit is over-represented on a street whose decor mimics
# another suit (bossbot in the green gardens, lawbot on the brown dock, cashbot among
# the maroon bricks of central, sellbot in the navy dreamland).
_HOME_STREET = np.array([2, 1, 0, 5])
_HOME_P = 0.35

# Street decor: sky, two wall colours, ground colour (RGB 0..1), wall pattern, ground
# pattern, ambient light. Patterns: 0 none, 1 bricks, 2 vertical planks, 3 dots,
# 4 check, 5 horizontal planks, 6 stars/speckles.
_STREET_SKY = np.array([
    [0.55, 0.75, 0.95], [0.62, 0.70, 0.80], [0.60, 0.85, 0.95],
    [0.35, 0.25, 0.50], [0.80, 0.85, 0.95], [0.08, 0.08, 0.20]], dtype=np.float32)
_STREET_WALL = np.array([
    [[0.95, 0.80, 0.30], [0.52, 0.20, 0.22]],   # central: yellow, maroon brick
    [[0.50, 0.35, 0.21], [0.35, 0.42, 0.55]],   # dock: brown wood, slate blue
    [[0.20, 0.42, 0.22], [0.85, 0.60, 0.70]],   # gardens: green hedge, pink
    [[0.70, 0.40, 0.70], [0.30, 0.22, 0.45]],   # melody: pink, purple
    [[0.85, 0.90, 1.00], [0.45, 0.55, 0.70]],   # brrrgh: snow, ice
    [[0.20, 0.20, 0.36], [0.32, 0.25, 0.40]],   # dreamland: navy, dusk purple
], dtype=np.float32)
_STREET_GROUND = np.array([
    [0.35, 0.58, 0.25], [0.40, 0.28, 0.18], [0.78, 0.74, 0.60],
    [0.50, 0.40, 0.60], [0.92, 0.94, 0.98], [0.15, 0.15, 0.25]], dtype=np.float32)
_STREET_WALL_PATTERN = np.array([1, 2, 3, 4, 0, 6])
_STREET_GROUND_PATTERN = np.array([0, 5, 3, 4, 6, 6])
_STREET_AMBIENT = np.array([1.05, 0.95, 1.0, 0.85, 1.1, 0.7], dtype=np.float32)

_HEAD_COLOURS = np.array([
    [0.62, 0.62, 0.65], [0.80, 0.70, 0.55], [0.90, 0.72, 0.68], [0.70, 0.80, 0.70],
    [0.65, 0.72, 0.85], [0.55, 0.48, 0.42], [0.92, 0.90, 0.85]], dtype=np.float32)
# Hands: one colour per suit (as in the game) plus white gloves; a weak cue only.
_HAND_COLOURS = np.array([
    [0.78, 0.62, 0.45], [0.62, 0.66, 0.85], [0.66, 0.80, 0.62], [0.90, 0.66, 0.70],
    [0.95, 0.95, 0.95]], dtype=np.float32)
_HAND_OWN_P = 0.4

_BG_LEVEL = np.float32(0.75)  # streets a little darker than the suits' lit side

_CHUNK_PIXELS = 250_000  # pixels rendered per chunk: bounds the float32 working set


def generate_toon(n_images: int = 1000, image_size: tuple[int, int] = DEFAULT_SIZE,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Render ``n_images`` cogs; return ``(x uint8 (N,H,W,3), y int32 (N,), class_names)``.

    Classes are balanced (counts differ by at most 1) and shuffled; the same seed gives
    identical arrays whatever the machine.
    """
    n_images = int(n_images)
    if n_images < 1:
        raise UserError(f"toon: n_images must be >= 1, got {n_images}")
    h, w = check_size(image_size)
    rng = np.random.default_rng([int(seed), 0x70_0E])
    p = _draw_params(rng, n_images)
    x = np.empty((n_images, h, w, 3), dtype=np.uint8)
    step = max(1, _CHUNK_PIXELS // (h * w))
    for start in range(0, n_images, step):
        stop = min(n_images, start + step)
        sl = {k: v[start:stop] for k, v in p.items()}
        noise = _image_noise(int(seed), start, stop, h, w)
        x[start:stop] = _render(sl, h, w, noise)
    return x, p["label"].astype(np.int32), CLASS_NAMES


def check_size(image_size: object, spec: str = "toon") -> tuple[int, int]:
    """(height, width) as positive ints, or one clear error naming the data set."""
    try:
        h, w = (int(s) for s in image_size)  # type: ignore[attr-defined]  # not iterable: TypeError, caught
    except (TypeError, ValueError):
        raise UserError(f"{spec}: image_size must be (height, width), got {image_size!r}") from None
    if h < 1 or w < 1:
        raise UserError(f"{spec}: image_size must be positive, got {image_size!r}")
    return h, w


# ----------------------------------------------------------------------------- params

def _draw_params(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Every per-image random choice, drawn up front in a fixed order (1-D arrays)."""
    f32 = np.float32
    u = lambda lo, hi: rng.uniform(lo, hi, n).astype(f32)  # noqa: E731
    label = rng.permutation(np.arange(n) % len(CLASS_NAMES))
    p: dict[str, np.ndarray] = {"label": label}

    # street with suit imbalance
    home = _HOME_STREET[label]
    other = rng.integers(0, len(STREET_NAMES) - 1, n)
    other = other + (other >= home)  # uniform over the 5 non-home streets
    p["street"] = np.where(rng.random(n) < _HOME_P, home, other)

    # suit dye
    hue = _SUIT_HSV[label, 0] + rng.normal(0, 1, n).astype(f32) * _SUIT_HUE_SD[label]
    sat = np.clip(_SUIT_HSV[label, 1] + rng.normal(0, 0.14, n), 0.1, 0.95)
    val = np.clip(_SUIT_HSV[label, 2] * np.exp(rng.normal(0, 0.2, n)), 0.15, 0.85)
    p["suit_rgb"] = _hsv_to_rgb(hue / 360.0, sat, val)  # (n, 3)
    p["texture"] = _SUIT_TEXTURE[label]
    p["tex_contrast"] = (u(0.25, 1.0) * 0.45).astype(f32)  # often faint
    p["tex_period"] = u(0.09, 0.16)
    p["tex_width"] = u(0.015, 0.035)
    p["tex_phase"] = u(0.0, 1.0)

    # figure placement and pose (width units; scene is 1 wide, 3 tall)
    p["scale"] = u(1.0, 1.25)
    p["cx"] = u(0.42, 0.58)
    p["foot"] = u(2.75, 3.1)  # > 3: feet cut by the frame
    p["lean"] = rng.normal(0, 0.08, n).astype(f32)
    p["body_w"] = u(1.1, 1.4)
    p["leg_spread"] = u(-0.02, 0.15)
    p["arm_l"] = u(-0.3, 2.2)  # angle from hanging down, radians
    p["arm_r"] = u(-0.3, 2.2)
    p["arm_len"] = u(0.6, 0.85)

    # head and hands
    p["head_shape"] = rng.choice(np.array([2.0, 3.0, 6.0], dtype=f32), n)  # superellipse power
    p["head_rx"] = u(0.16, 0.30)
    p["head_ry"] = u(0.18, 0.36)
    p["head_dx"] = rng.normal(0, 0.04, n).astype(f32)
    p["head_rgb"] = _HEAD_COLOURS[rng.integers(0, len(_HEAD_COLOURS), n)] \
        * u(0.85, 1.1)[:, None]
    p["hat"] = rng.random(n) < 0.4
    p["hat_rgb"] = rng.uniform(0.05, 0.95, (n, 3)).astype(f32)
    p["eyes"] = rng.random(n) < 0.7
    own = rng.random(n) < _HAND_OWN_P
    p["hand_rgb"] = _HAND_COLOURS[np.where(own, label, rng.integers(0, len(_HAND_COLOURS), n))]
    p["tie_rgb"] = rng.uniform(0.05, 0.8, (n, 3)).astype(f32)

    # background layout
    p["horizon"] = u(1.7, 2.5)
    p["wall_top_l"] = u(0.1, 1.3)
    p["wall_top_r"] = u(0.1, 1.3)
    p["wall_split"] = u(0.15, 0.85)
    p["wall_swap"] = rng.random(n) < 0.5
    p["wall_jit"] = rng.normal(1.0, 0.12, (n, 3)).astype(f32)
    p["pat_period"] = u(0.12, 0.3)
    p["windows"] = rng.random(n) < 0.5
    p["win_lit"] = rng.random(n) < 0.5

    # occluder (lamp post, crate, another toon's limb) in any colour, suit-like included
    p["occ"] = rng.random(n) < 0.25
    p["occ_round"] = rng.random(n) < 0.5
    p["occ_x"] = u(0.0, 1.0)
    p["occ_y"] = u(0.8, 2.9)
    p["occ_w"] = u(0.06, 0.3)
    p["occ_h"] = u(0.1, 0.6)
    occ_suit = rng.random(n) < 0.3
    any_rgb = rng.uniform(0.05, 0.95, (n, 3)).astype(f32)
    suit_like = _hsv_to_rgb(rng.uniform(0, 1, n), rng.uniform(0.3, 0.6, n),
                            rng.uniform(0.25, 0.5, n))
    p["occ_rgb"] = np.where(occ_suit[:, None], suit_like, any_rgb)

    # camera: lighting, white balance, gradient, noise
    p["bright"] = (u(0.75, 1.25) * _STREET_AMBIENT[p["street"]]).astype(f32)
    p["wb"] = np.exp(rng.normal(0, 0.12, (n, 3))).astype(f32)
    p["grad"] = rng.normal(0, 0.25, n).astype(f32)
    p["noise_sd"] = u(0.01, 0.06)
    return p


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV (all 0..1, hue wraps) -> RGB, shape (n, 3) float32."""
    h = np.mod(np.asarray(h, np.float32), 1.0) * 6.0
    s = np.asarray(s, np.float32)
    v = np.asarray(v, np.float32)
    i = np.floor(h).astype(np.int64) % 6
    f = h - np.floor(h)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    table = np.stack([
        np.stack([v, t, p], -1), np.stack([q, v, p], -1), np.stack([p, v, t], -1),
        np.stack([p, q, v], -1), np.stack([t, p, v], -1), np.stack([v, p, q], -1)], 0)
    return table[i, np.arange(len(i))].astype(np.float32)


def _image_noise(seed: int, start: int, stop: int, h: int, w: int) -> np.ndarray:
    """Pixel noise per image from its own generator: independent of chunking."""
    out = np.empty((3, stop - start, h, w), dtype=np.float32)
    for k, i in enumerate(range(start, stop)):
        out[:, k] = np.random.default_rng([seed, 0xA015E, i]).standard_normal(
            (3, h, w), dtype=np.float32)
    return out


# ----------------------------------------------------------------------------- render

class _Canvas:
    """Pixel-centre coordinates in width units and anti-aliased shape coverage."""

    def __init__(self, h: int, w: int):
        self.du = np.float32(1.0 / w)
        self.dv = np.float32(3.0 / h)
        self.px = np.float32((self.du + self.dv) / 2)
        self.u = ((np.arange(w, dtype=np.float32) + 0.5) * self.du)[None, None, :]
        self.v = ((np.arange(h, dtype=np.float32) + 0.5) * self.dv)[None, :, None]

    @staticmethod
    def col(a: np.ndarray) -> np.ndarray:
        """(n,) -> (n,1,1) for broadcasting against (n,H,W); scalars pass through."""
        a = np.asarray(a, np.float32)
        return a if a.ndim == 0 else a[:, None, None]

    def rect(self, x0, x1, y0, y1) -> np.ndarray:
        c = self.col
        cu = np.clip(np.minimum(self.u - c(x0), c(x1) - self.u) / self.du + 0.5, 0, 1)
        cv = np.clip(np.minimum(self.v - c(y0), c(y1) - self.v) / self.dv + 0.5, 0, 1)
        return cu * cv

    def superellipse(self, cx, cy, rx, ry, power=2.0) -> np.ndarray:
        """|x/rx|^p + |y/ry|^p <= 1: an ellipse for p=2 (fast path), boxier as p grows."""
        c = self.col
        du, dv = (self.u - c(cx)) / c(rx), (self.v - c(cy)) / c(ry)
        if np.ndim(power) == 0 and power == 2.0:
            r = np.sqrt(du * du + dv * dv)
        else:
            r = (np.abs(du) ** c(power) + np.abs(dv) ** c(power)) ** (1.0 / c(power))
        d = (r - 1.0) * np.minimum(c(rx), c(ry))
        return np.clip(0.5 - d / self.px, 0, 1)

    def capsule(self, x0, y0, x1, y1, r) -> np.ndarray:
        c = self.col
        ax, ay = c(x0), c(y0)
        bx, by = c(x1) - ax, c(y1) - ay
        pu, pv = self.u - ax, self.v - ay
        t = np.clip((pu * bx + pv * by) / (bx * bx + by * by + 1e-9), 0, 1)
        d = np.sqrt((pu - t * bx) ** 2 + (pv - t * by) ** 2) - c(r)
        return np.clip(0.5 - d / self.px, 0, 1)

    def stripes(self, coord: np.ndarray, period, width, phase) -> np.ndarray:
        """Anti-aliased thin lines every ``period`` along ``coord`` (0..1 coverage)."""
        c = self.col
        d = np.abs(np.mod(coord / c(period) + c(phase), 1.0) - 0.5) * c(period)
        return np.clip((c(width) / 2 - d) / self.px + 0.5, 0, 1)


def _paint(img: np.ndarray, alpha: np.ndarray, rgb: np.ndarray) -> None:
    """Alpha-composite ``rgb`` ((n,3) or (3,n,H,W)) over channel-first ``img`` in place.

    Channel-first keeps the (n,H,W) alpha broadcast contiguous: ~9x faster than NHWC.
    """
    if rgb.ndim == 2:
        rgb = rgb.T[:, :, None, None]
    delta = np.subtract(rgb, img, dtype=np.float32)
    delta *= alpha
    img += delta


def _select(kind: np.ndarray, fields: dict[int, Callable[[], np.ndarray]], shape) -> np.ndarray:
    """Per image, the field of its kind (callables evaluated only if some image needs it)."""
    out = np.zeros(shape, dtype=np.float32)
    for k, make in fields.items():
        hit = kind == k
        if hit.any():
            out = np.where(hit[:, None, None], make(), out)
    return out


def _render(p: dict[str, np.ndarray], h: int, w: int, noise: np.ndarray) -> np.ndarray:
    n = len(p["label"])
    cv = _Canvas(h, w)
    c = cv.col
    U, V = cv.u, cv.v
    shape = (n, h, w)
    img = np.empty((3, n, h, w), dtype=np.float32)  # channel-first while painting
    street = p["street"]

    # --- background: sky, two walls with a street pattern, ground with a pattern
    img[:] = _STREET_SKY[street].T[:, :, None, None] * _BG_LEVEL
    per = p["pat_period"]
    wall_pat = _select(_STREET_WALL_PATTERN[street], {
        1: lambda: np.maximum(cv.stripes(V + 0 * U, per * 0.4, 0.02, 0.0),
                              cv.stripes(U + 0.5 * (np.floor(V / c(per * 0.4)) % 2)
                                         * c(per) + 0 * V, per, 0.02, 0.0)),
        2: lambda: cv.stripes(U + 0 * V, per * 0.5, 0.025, p["tex_phase"]),
        3: lambda: (((np.mod(U / c(per), 1) - 0.5) ** 2
                     + (np.mod(V / c(per), 1) - 0.5) ** 2) < 0.06).astype(np.float32),
        4: lambda: ((np.floor(U / c(per)) + np.floor(V / c(per))) % 2).astype(np.float32),
        6: lambda: (noise[0] > 2.2).astype(np.float32),
    }, shape)
    split = p["wall_split"]
    left = cv.rect(np.full(n, -1.0), split, p["wall_top_l"], p["horizon"])
    right = cv.rect(split, np.full(n, 2.0), p["wall_top_r"], p["horizon"])
    walls = _STREET_WALL[street] * p["wall_jit"][:, None, :] * _BG_LEVEL  # (n, 2, 3)
    swap = p["wall_swap"][:, None]
    wl = np.where(swap, walls[:, 1], walls[:, 0])
    wr = np.where(swap, walls[:, 0], walls[:, 1])
    _paint(img, left, wl)
    _paint(img, right, wr)
    wall_a = np.maximum(left, right)
    _paint(img, wall_a * wall_pat * 0.5, np.zeros((n, 3), np.float32) + 0.1)
    win = ((np.mod(U / c(per * 1.6), 1) > 0.55) & (np.mod(V / c(per * 1.6), 1) > 0.5))
    # numpy's stubs type np.float32(x) as a scalar; given a nested list it builds an array
    win_rgb = np.where(p["win_lit"][:, None], np.float32([[0.95, 0.85, 0.4]]),  # type: ignore[arg-type]
                       np.float32([[0.1, 0.12, 0.18]]))  # type: ignore[arg-type]
    _paint(img, wall_a * win * c(p["windows"]), win_rgb)
    ground = cv.rect(np.full(n, -1.0), np.full(n, 2.0), p["horizon"], np.full(n, 9.0))
    _paint(img, ground, _STREET_GROUND[street] * _BG_LEVEL)
    ground_pat = _select(_STREET_GROUND_PATTERN[street], {
        3: lambda: (noise[1] > 1.8).astype(np.float32),
        4: lambda: ((np.floor(U / c(per)) + np.floor((V - c(p["horizon"])) / c(per * 0.5)))
                    % 2).astype(np.float32),
        5: lambda: cv.stripes(V + 0 * U, per * 0.5, 0.02, 0.0),
        6: lambda: (noise[2] > 2.0).astype(np.float32),
    }, shape)
    _paint(img, ground * ground_pat * 0.35, np.zeros((n, 3), np.float32) + 0.9
           * (np.float32(1) - _STREET_GROUND[street]))

    # --- the cog: legs, torso, arms share the textured suit layer
    s, cx, foot = p["scale"], p["cx"], p["foot"]
    hip = foot - 0.75 * s
    shoulder = foot - 1.6 * s
    lean = p["lean"]
    spread = p["leg_spread"]
    leg_r = 0.075 * s
    legs = np.maximum(
        cv.capsule(cx - 0.1 * s, hip, cx - (0.1 + spread) * s, foot - 0.06 * s, leg_r),
        cv.capsule(cx + 0.1 * s, hip, cx + (0.1 + spread) * s, foot - 0.06 * s, leg_r))
    t = np.clip((V - c(shoulder)) / c(hip - shoulder), 0, 1)
    half = c(0.33 * s * p["body_w"]) + (c(0.24 * s * p["body_w"]) - c(0.33 * s * p["body_w"])) * t
    centre = c(cx) + c(lean) * (V - c(hip))
    torso = (np.clip((half - np.abs(U - centre)) / cv.du + 0.5, 0, 1)
             * np.clip(np.minimum(V - c(shoulder), c(hip) - V) / cv.dv + 0.5, 0, 1))
    arm_len = p["arm_len"] * s
    sh_y = shoulder + 0.06 * s
    sh_lx = cx - 0.3 * s * p["body_w"] + lean * (sh_y - hip)
    sh_rx = cx + 0.3 * s * p["body_w"] + lean * (sh_y - hip)
    hl = (sh_lx - np.sin(p["arm_l"]) * arm_len, sh_y + np.cos(p["arm_l"]) * arm_len)
    hr = (sh_rx + np.sin(p["arm_r"]) * arm_len, sh_y + np.cos(p["arm_r"]) * arm_len)
    arms = np.maximum(cv.capsule(sh_lx, sh_y, hl[0], hl[1], 0.07 * s),
                      cv.capsule(sh_rx, sh_y, hr[0], hr[1], 0.07 * s))
    suit_a = np.maximum(np.maximum(legs, torso), arms)

    # suit texture, anchored to the body so stripes move with it
    bu = (U - centre) / c(s)
    bv = (V - c(shoulder)) / c(s)
    per, wid, ph = p["tex_period"], p["tex_width"], p["tex_phase"]
    tex = _select(p["texture"], {
        1: lambda: cv.stripes(bu * c(s), per * s, wid * s, ph),
        2: lambda: np.maximum(cv.stripes(bu * c(s), per * s * 1.2, wid * s, ph),
                              cv.stripes(bv * c(s), per * s * 1.2, wid * s, ph)),
        3: lambda: cv.stripes((bu + bv) * c(s), per * s * 0.7, wid * s * 1.5, ph),
    }, shape)
    shade = 1.0 + 0.25 * (U - c(cx)) * c(np.sign(p["grad"]))
    suit = p["suit_rgb"].T[:, :, None, None] * (
        shade * (1.0 + tex * c(p["tex_contrast"] * 2.2))
        * (1.0 - 0.18 * arms * (1 - torso)))  # arms a shade darker
    _paint(img, suit_a, suit)

    # shirt collar and tie
    collar_t = np.clip((V - c(shoulder)) / c(0.28 * s), 0, 1)
    collar = (np.abs(U - centre) < c(0.09 * s) * (1 - collar_t)) & (collar_t < 1) \
        & (V > c(shoulder))
    _paint(img, collar.astype(np.float32), np.full((n, 3), 0.95, np.float32))
    tie = cv.rect(cx - 0.025 * s, cx + 0.025 * s, shoulder + 0.04 * s, shoulder + 0.3 * s)
    _paint(img, tie * (V > c(shoulder)), p["tie_rgb"])

    # shoes, hands, head (with optional hat and eyes)
    shoe_y = foot - 0.03 * s
    for sx in (cx - (0.13 + spread) * s, cx + (0.13 + spread) * s):
        _paint(img, cv.superellipse(sx, shoe_y, 0.1 * s, 0.045 * s),
               np.zeros((n, 3), np.float32) + 0.08)
    for hx, hy in (hl, hr):
        _paint(img, cv.superellipse(hx, hy, 0.08 * s, 0.08 * s),
               p["hand_rgb"])
    hrx, hry = p["head_rx"] * s, p["head_ry"] * s
    hcx, hcy = cx + p["head_dx"] * s + lean * (shoulder - hip), shoulder - 0.9 * hry
    _paint(img, cv.superellipse(hcx, hcy, hrx, hry, p["head_shape"]), p["head_rgb"])
    hat = cv.superellipse(hcx, hcy - hry, hrx * 0.8, hry * 0.45, np.full(n, 2.5))
    _paint(img, hat * (V < c(hcy - hry * 0.7)) * c(p["hat"]), p["hat_rgb"])
    eye = np.maximum(cv.superellipse(hcx - 0.4 * hrx, hcy - 0.1 * hry, 0.04 * s, 0.05 * s),
                     cv.superellipse(hcx + 0.4 * hrx, hcy - 0.1 * hry, 0.04 * s, 0.05 * s))
    _paint(img, eye * c(p["eyes"]), np.zeros((n, 3), np.float32) + 0.05)

    # occluder
    ox, oy, ow, oh = p["occ_x"], p["occ_y"], p["occ_w"], p["occ_h"]
    occ = np.where(c(p["occ_round"]) > 0,
                   cv.superellipse(ox, oy, ow, oh * 0.6),
                   cv.rect(ox - ow / 2, ox + ow / 2, oy - oh, oy + oh))
    _paint(img, occ * c(p["occ"]), p["occ_rgb"])

    # --- camera: white balance, brightness, side light, noise
    img *= (p["wb"] * p["bright"][:, None]).T[:, :, None, None]
    img *= 1.0 + c(p["grad"]) * (U - 0.5)
    noise *= c(p["noise_sd"])
    img += noise
    np.clip(img, 0.0, 1.0, out=img)
    img *= 255.0
    img += 0.5
    return img.astype(np.uint8).transpose(1, 2, 3, 0)
