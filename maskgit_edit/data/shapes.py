"""Procedural scenes of a few flat-coloured shapes over a colour gradient.

Each example is a pure function of (seed, split, index): a smooth linear
gradient between two background palette colours, one main object (circle,
square, triangle, ellipse) and up to two smaller ones, each of a colour from
the object palette and of random size, position and rotation. Label = shape
class of the main object, which is at least twice the area of any other, so
the label is never a close call. Objects are drawn back to front in order of
decreasing area, so the small ones may occlude part of the main one.

Colours come from small palettes (not the RGB cube) and scenes are sparse so
that an 8x8-token tokenizer keeps every main object's outline and a small
transformer trained for an hour on a CPU can learn whole shapes
(docs/shapes_recipe.md has the history).

Scenes are described in resolution-free units (fractions of the image side)
and rendered with analytic anti-aliasing: each pixel's coverage is estimated
from the signed distance to the shape's edge, so edges are smooth at any
image_size and there is no pixel noise for a small tokenizer to spend bits on.
"""

import dataclasses
import math

import numpy as np

from maskgit_edit.data import base

SHAPE_NAMES = ("circle", "square", "triangle", "ellipse")
MIN_OBJECTS, MAX_OBJECTS = 1, 3
MIN_IMAGE_SIZE = 8
# Radius of the disc with the object's area, as a fraction of the image side:
# the main object, then the others (at most half its area).
_MAIN_RADIUS_RANGE = (0.19, 0.27)
_OTHER_RADIUS_RANGE = (0.08, 0.13)
# Saturated object colours and muted background colours, RGB in [0, 1].
OBJECT_PALETTE = (
    (0.90, 0.15, 0.15),
    (0.98, 0.55, 0.10),
    (0.95, 0.85, 0.15),
    (0.20, 0.75, 0.25),
    (0.15, 0.80, 0.85),
    (0.20, 0.35, 0.90),
    (0.60, 0.25, 0.80),
    (0.95, 0.95, 0.95),
)
BACKGROUND_PALETTE = (
    (0.10, 0.12, 0.30),
    (0.12, 0.30, 0.18),
    (0.35, 0.35, 0.38),
    (0.75, 0.70, 0.58),
    (0.40, 0.12, 0.15),
    (0.55, 0.68, 0.78),
)
# Minor / major axis ratio of ellipses: far enough from 1 to tell from circles.
_ELLIPSE_ASPECT_RANGE = (0.45, 0.7)
# Sizes per unit equal-area radius (shape area = pi radius^2).
_SQUARE_HALF_SIDE = math.sqrt(math.pi) / 2
_TRIANGLE_INRADIUS = math.sqrt(math.pi / (3 * math.sqrt(3)))
# Circumradius per unit radius, by kind, for aspect 1 (ellipses divide it by
# sqrt(aspect)).
_CIRCUMRADIUS = (
    1.0,
    _SQUARE_HALF_SIDE * math.sqrt(2),
    2 * _TRIANGLE_INRADIUS,
    1.0,
)
# Minimum RGB distance (colours in [0, 1]) between an object and the
# background at its centre, so that every object is visible.
_MIN_CONTRAST = 0.35


Color = tuple[float, float, float]  # RGB in [0, 1].


@dataclasses.dataclass(frozen=True)
class SceneObject:
  """One shape; lengths and positions are fractions of the image side.

  Attributes:
    kind: index into SHAPE_NAMES.
    center_xy: centre (x right, y down) in [0, 1].
    radius: radius of the disc of the same area as the shape.
    angle: rotation in radians.
    aspect: minor / major axis ratio (ellipses; 1 for other shapes).
    color: RGB in [0, 1].
  """

  kind: int
  center_xy: tuple[float, float]
  radius: float
  angle: float
  aspect: float
  color: Color

  @property
  def area(self) -> float:
    """Area as a fraction of the image area."""
    return math.pi * self.radius**2

  @property
  def circumradius(self) -> float:
    """Radius of the smallest disc around the centre that holds the shape."""
    return _circumradius(self.kind, self.radius, self.aspect)


@dataclasses.dataclass(frozen=True)
class Scene:
  """A full scene description.

  Attributes:
    background_colors: the gradient's two end colours, RGB in [0, 1].
    background_angle: direction of the gradient in radians (0: left to right).
    objects: shapes in drawing order, back to front.
  """

  background_colors: tuple[Color, Color]
  background_angle: float
  objects: tuple[SceneObject, ...]

  @property
  def label(self) -> int:
    """Shape class of the largest object."""
    return max(self.objects, key=lambda obj: obj.area).kind


class ShapesSource:
  """`ImageSource` of procedural scenes; see the module docstring."""

  num_classes = len(SHAPE_NAMES)

  def __init__(self, image_size: int, num_examples: int, seed: int, split: str):
    if image_size < MIN_IMAGE_SIZE:
      raise ValueError(
          f"shapes needs image_size >= {MIN_IMAGE_SIZE}; got {image_size}."
      )
    base.split_index(split)
    self.image_size = image_size
    self._num_examples = num_examples
    self._seed = seed
    self._split = split

  def __len__(self) -> int:
    return self._num_examples

  def get(self, indices_N: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns (images_NxSxSx3 uint8, labels_N int32)."""
    indices_N = base.check_indices(indices_N, self._num_examples)
    scenes = [describe_scene(self._seed, self._split, i) for i in indices_N]
    labels_N = np.array([scene.label for scene in scenes], dtype=np.int32)
    return render_scenes(scenes, self.image_size), labels_N

  def kind_maps(self, indices_N: np.ndarray, side: int) -> np.ndarray:
    """What covers each cell of a side x side grid over the examples.

    Returns:
      int32 [N, side, side]: 0 for background, 1 + kind (index into
      SHAPE_NAMES) of the front-most object over the cell's centre.
    """
    indices_N = base.check_indices(indices_N, self._num_examples)
    scenes = [describe_scene(self._seed, self._split, i) for i in indices_N]
    maps_NxSxS = np.zeros((len(scenes), side, side), np.int32)
    for depth in range(MAX_OBJECTS):
      rows = [n for n, scene in enumerate(scenes) if len(scene.objects) > depth]
      if not rows:
        break
      objects = [scenes[n].objects[depth] for n in rows]
      # Coverage above one half at a grid of `side` cells: centre inside.
      inside_MxSxS = _coverage(objects, side) > 0.5
      kinds_Mx1x1 = np.array([obj.kind for obj in objects])[:, None, None]
      maps_NxSxS[rows] = np.where(
          inside_MxSxS, 1 + kinds_Mx1x1, maps_NxSxS[rows]
      )
    return maps_NxSxS


def describe_scene(seed: int, split: str, index: int) -> Scene:
  """The scene of example `index` of `split`: what `ShapesSource` renders."""
  rng = base.example_rng(seed, split, index)
  ends = rng.choice(len(BACKGROUND_PALETTE), size=2)
  colors = tuple(BACKGROUND_PALETTE[i] for i in ends.tolist())
  angle = rng.uniform(0, 2 * np.pi)
  num_objects = rng.integers(MIN_OBJECTS, MAX_OBJECTS + 1)
  radii = [rng.uniform(*_MAIN_RADIUS_RANGE)] + np.sort(
      rng.uniform(*_OTHER_RADIUS_RANGE, size=num_objects - 1)
  )[::-1].tolist()
  objects = tuple(_sample_object(rng, r, colors, angle) for r in radii)
  return Scene(colors, angle, objects)


def _sample_object(
    rng: np.random.Generator,
    radius: float,
    background_colors: tuple[Color, Color],
    background_angle: float,
) -> SceneObject:
  kind = int(rng.integers(len(SHAPE_NAMES)))
  angle = rng.uniform(0, 2 * np.pi)
  is_ellipse = SHAPE_NAMES[kind] == "ellipse"
  aspect = rng.uniform(*_ELLIPSE_ASPECT_RANGE) if is_ellipse else 1.0
  # Whole objects stay in the frame, so areas compare as seen.
  margin = _circumradius(kind, radius, aspect)
  center_xy = rng.uniform(margin, 1 - margin, size=2)
  position = _gradient_position(background_angle, *center_xy)
  low, high = np.asarray(background_colors)
  background = low + position * (high - low)
  palette_Px3 = np.asarray(OBJECT_PALETTE)
  visible_P = np.linalg.norm(palette_Px3 - background, axis=1) >= _MIN_CONTRAST
  color = palette_Px3[rng.choice(np.flatnonzero(visible_P))]
  return SceneObject(
      kind,
      tuple(center_xy.tolist()),
      radius,
      angle,
      aspect,
      tuple(color.tolist()),
  )


def _circumradius(kind: int, radius: float, aspect: float) -> float:
  return radius * _CIRCUMRADIUS[kind] / math.sqrt(aspect)


def render_scenes(scenes: list[Scene], image_size: int) -> np.ndarray:
  """Renders scenes, vectorised over scenes and pixels.

  Returns:
    images_NxSxSx3: uint8, S = image_size.
  """
  images_NxSxSx3 = _background(scenes, image_size)
  for depth in range(MAX_OBJECTS):
    rows = [n for n, scene in enumerate(scenes) if len(scene.objects) > depth]
    if not rows:
      break
    objects = [scenes[n].objects[depth] for n in rows]
    alpha_MxSxSx1 = _coverage(objects, image_size)[..., None]
    color_Mx1x1x3 = np.array([obj.color for obj in objects])[:, None, None, :]
    under_MxSxSx3 = images_NxSxSx3[rows]
    images_NxSxSx3[rows] = under_MxSxSx3 + alpha_MxSxSx1 * (
        color_Mx1x1x3 - under_MxSxSx3
    )
  return np.round(images_NxSxSx3 * 255).astype(np.uint8)


def _pixel_centers(image_size: int) -> np.ndarray:
  return (np.arange(image_size) + 0.5) / image_size


def _gradient_position(angle, x, y):
  """Position in [0, 1] along a gradient of direction `angle` (broadcasts)."""
  cos, sin = np.cos(angle), np.sin(angle)
  # The image corners project to +-(|cos| + |sin|) / 2 around the centre.
  return 0.5 + ((x - 0.5) * cos + (y - 0.5) * sin) / (np.abs(cos) + np.abs(sin))


def _background(scenes: list[Scene], image_size: int) -> np.ndarray:
  coords_S = _pixel_centers(image_size)
  angle_N = np.array([s.background_angle for s in scenes], float)
  angle_Nx1x1 = angle_N[:, None, None]
  position_NxSxS = _gradient_position(
      angle_Nx1x1, coords_S[None, None, :], coords_S[None, :, None]
  )
  colors = [s.background_colors for s in scenes]
  colors_Nx2x3 = np.array(colors, float).reshape(-1, 2, 3)
  low_Nx1x1x3 = colors_Nx2x3[:, None, None, 0]
  high_Nx1x1x3 = colors_Nx2x3[:, None, None, 1]
  return low_Nx1x1x3 + position_NxSxS[..., None] * (high_Nx1x1x3 - low_Nx1x1x3)


def _coverage(objects: list[SceneObject], image_size: int) -> np.ndarray:
  """Fraction of each pixel covered by each object, shape [M, S, S]."""
  coords_S = _pixel_centers(image_size)
  center_Mx2 = np.array([obj.center_xy for obj in objects])
  angle_Mx1x1 = np.array([obj.angle for obj in objects])[:, None, None]
  radius_Mx1x1 = np.array([obj.radius for obj in objects])[:, None, None]
  aspect_Mx1x1 = np.array([obj.aspect for obj in objects])[:, None, None]
  kind_M = np.array([obj.kind for obj in objects])
  dx_Mx1xS = coords_S[None, None, :] - center_Mx2[:, 0, None, None]
  dy_MxSx1 = coords_S[None, :, None] - center_Mx2[:, 1, None, None]
  cos, sin = np.cos(angle_Mx1x1), np.sin(angle_Mx1x1)
  # Coordinates in the object's rotated frame.
  u_MxSxS = cos * dx_Mx1xS + sin * dy_MxSx1
  v_MxSxS = cos * dy_MxSx1 - sin * dx_Mx1xS
  distance_MxSxS = np.empty_like(u_MxSxS)
  for kind, signed_distance in enumerate(_SIGNED_DISTANCES):
    rows = kind_M == kind
    if rows.any():
      distance_MxSxS[rows] = signed_distance(
          u_MxSxS[rows], v_MxSxS[rows], radius_Mx1x1[rows], aspect_Mx1x1[rows]
      )
  # A straight edge at signed distance d pixels from a pixel centre covers
  # 0.5 - d of the pixel (clipped): a one-pixel-wide linear ramp.
  return np.clip(0.5 - distance_MxSxS * image_size, 0.0, 1.0)


# Signed distances (negative inside) in the object frame; `radius` is the
# equal-area disc radius, so every shape of a given radius has the same area.
def _circle_distance(u, v, radius, aspect):
  del aspect  # Circles are round.
  return np.hypot(u, v) - radius


def _square_distance(u, v, radius, aspect):
  del aspect  # Squares are square.
  return np.maximum(np.abs(u), np.abs(v)) - radius * _SQUARE_HALF_SIDE


# Outward edge normals of an equilateral triangle with a vertex pointing up.
_TRIANGLE_NORMAL_ANGLES = np.pi / 2 + 2 * np.pi / 3 * np.arange(3)


def _triangle_distance(u, v, radius, aspect):
  del aspect  # Triangles are equilateral.
  # Area = 3 sqrt(3) inradius^2.
  inradius = radius * _TRIANGLE_INRADIUS
  projections = [
      u * math.cos(a) + v * math.sin(a) for a in _TRIANGLE_NORMAL_ANGLES
  ]
  return np.maximum.reduce(projections) - inradius


def _ellipse_distance(u, v, radius, aspect):
  major, minor = radius / np.sqrt(aspect), radius * np.sqrt(aspect)
  # First-order distance to the level set k = 1 of k = |(u/a, v/b)|:
  # (k - 1) / |grad k| = (k - 1) * k / |(u/a^2, v/b^2)|.
  level = np.hypot(u / major, v / minor)
  gradient_norm = np.hypot(u / major**2, v / minor**2)
  # level / gradient_norm lies in [minor, major]; at the centre it is 0 / 0.
  scale = np.divide(
      level,
      gradient_norm,
      out=np.broadcast_to(minor, level.shape).copy(),
      where=gradient_norm > 0,
  )
  return (level - 1) * scale


_SIGNED_DISTANCES = (
    _circle_distance,
    _square_distance,
    _triangle_distance,
    _ellipse_distance,
)
