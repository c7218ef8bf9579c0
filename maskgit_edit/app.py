r"""Paint a stroke, pick a variant, see the edit: a local web page.

  python -m maskgit_edit.app                            # committed models
  python -m maskgit_edit.app --run runs/fashion_mnist    # any run folder
  python -m maskgit_edit.app --tokenizer_workdir T --transformer_workdir M

A page of our own (one HTML file, `app_page.html`) over the standard
library's HTTP server: a canvas is all the painting needs, so the project
takes on no web framework, and every edit goes through the same
`edit.Editor.edit` call as the CLI. Each alternative is a batch-1 edit with
its own seed, so the shell command the page shows reproduces it exactly.

JSON API (POST bodies and answers are JSON; images are base64 PNG):
  GET  /api/info    model sizes, classes, variants and their knob ranges
  POST /api/source  {"kind": "test", "index"} | {"kind": "sample", "label",
                    "seed"} | {"kind": "upload", "png"} -> the source
  POST /api/edit    {"source", "layer" (RGBA paint), "variant", "knob",
                    "seed", "alternatives", "label", "window" ("full" or
                    a context ring in tokens)} -> edits, token mask,
                    decoding steps, command
A bad request answers 400 with {"error": one line}; the server keeps going.
Hostile ones too: a body over `MAX_REQUEST_BYTES` answers 413 unread, a
missing or bad Content-Length 411 / 400, an image over `MAX_IMAGE_PIXELS`
400 before it is decoded, and a request from another origin (an Origin or
Host header that is not this server's, as cross-site requests and DNS
rebinding send) 403.
"""

import base64
import dataclasses
import http.server
import io
import json
import os
import shlex
import threading
import traceback

from absl import app as absl_app
from absl import flags
import jax
import numpy as np
from PIL import Image
from PIL import UnidentifiedImageError

from maskgit_edit import artefacts
from maskgit_edit import cli
from maskgit_edit import data as data_lib
from maskgit_edit import edit as edit_lib
from maskgit_edit import images as images_lib
from maskgit_edit.decoding import sampling
from maskgit_edit.decoding import guidance as guidance_lib
from maskgit_edit.decoding import windows

PAGE_PATH = os.path.join(os.path.dirname(__file__), "app_page.html")
MAX_ALTERNATIVES = 8
# A request carries two PNGs of the model's size or one upload; 16 MiB
# bounds what each server thread reads.
MAX_REQUEST_BYTES = 16 * 2**20
# Uploads are resized to the model's size; a larger image (a decompression
# bomb is small on the wire) is refused before its pixels are decoded.
MAX_IMAGE_PIXELS = 25 * 10**6
# Host names of the loopback address that a local page is reached by.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")


class RequestError(ValueError):
  """A request the page can fix: answered `status` (400) with the message."""

  def __init__(self, message: str, status: int = 400):
    super().__init__(message)
    self.status = status


def int_field(body: dict, name: str, default: int) -> int:
  """body[name] as an int, or a RequestError naming the field."""
  value = body.get(name, default)
  if isinstance(value, bool) or not isinstance(value, (int, str)):
    raise RequestError(f"{name} must be an integer, got {value!r}.")
  try:
    return int(value)
  except ValueError as e:
    raise RequestError(f"{name} must be an integer, got {value!r}.") from e


def check_origin(headers, server_host: str, port: int) -> None:
  """Refuses (403) a request whose Host is not this server's or whose
  Origin is another site's; a server bound to all addresses accepts any
  Host (it is meant to be reached from elsewhere) but still checks Origin."""
  host = headers.get("Host", "")
  names = LOCAL_HOSTS + (server_host,)
  if server_host not in ("0.0.0.0", "", "::") and host not in {
      f"{name}:{port}" for name in names
  }:
    raise RequestError(f"Host {host!r} is not this server.", 403)
  origin = headers.get("Origin")
  if origin is not None and origin != f"http://{host}":
    raise RequestError(f"Requests from {origin!r} are refused.", 403)


def request_length(headers) -> int:
  """The Content-Length of a POST, checked against `MAX_REQUEST_BYTES`."""
  text = headers.get("Content-Length")
  if text is None:
    raise RequestError("The request has no Content-Length.", 411)
  try:
    length = int(text)
  except ValueError as e:
    raise RequestError(f"Bad Content-Length {text!r}.") from e
  if length < 0:
    raise RequestError(f"Bad Content-Length {text!r}.")
  if length > MAX_REQUEST_BYTES:
    raise RequestError(
        f"The request is {length} bytes; at most {MAX_REQUEST_BYTES} are "
        "accepted.",
        413,
    )
  return length


# --- pure functions behind the page ------------------------------------------
def decode_png(encoded: str, what: str) -> Image.Image:
  """A base64 PNG (an optional data-URL prefix is dropped) as a PIL image."""
  if not isinstance(encoded, str) or not encoded:
    raise RequestError(f"No {what} image was sent.")
  try:
    raw = base64.b64decode(encoded.split(",", 1)[-1], validate=True)
    image = Image.open(io.BytesIO(raw))  # Reads the header only.
  except (ValueError, UnidentifiedImageError, OSError) as e:
    raise RequestError(f"The {what} is not an image file.") from e
  except Image.DecompressionBombError as e:
    raise RequestError(f"The {what} has too many pixels.") from e
  width, height = image.size
  if width * height > MAX_IMAGE_PIXELS:
    raise RequestError(
        f"The {what} is {width}x{height} pixels; at most "
        f"{MAX_IMAGE_PIXELS} pixels are accepted."
    )
  try:
    image.load()
  except (ValueError, OSError) as e:
    raise RequestError(f"The {what} is not an image file.") from e
  return image


def encode_png(image_HxWx3) -> str:
  """uint8 or float [0, 1] image -> base64 PNG."""
  image = np.asarray(image_HxWx3)
  if image.dtype != np.uint8:
    image = images_lib.to_uint8(image)
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format="PNG")
  return base64.b64encode(buffer.getvalue()).decode("ascii")


def fit_to_size(image: Image.Image, size: int) -> tuple[np.ndarray, str | None]:
  """uint8 [size, size, 3] RGB of `image`, centre-cropped to a square and
  resized; the notice says what was changed (None when nothing was)."""
  rgb = image.convert("RGB")
  width, height = rgb.size
  if (width, height) == (size, size):
    return np.asarray(rgb), None
  side = min(width, height)
  left, top = (width - side) // 2, (height - side) // 2
  cropped = rgb.crop((left, top, left + side, top + side))
  notice = (
      f"The image was {width}x{height}: "
      + ("centre-cropped to a square and " if width != height else "")
      + f"resized to the model's {size}x{size}."
  )
  return np.asarray(cropped.resize((size, size), Image.BICUBIC)), notice


def stroke_and_mask(source_HxWx3, layer_HxWx4) -> tuple[np.ndarray, np.ndarray]:
  """The painted layer over the source: (stroke image uint8 [H, W, 3], mask
  bool [H, W]).

  Paint covers the source by its alpha; every pixel with any paint is in
  the mask (what the CLI reads from a mask PNG: non-zero = edit).
  """
  source = np.asarray(source_HxWx3, np.uint8)
  layer = np.asarray(layer_HxWx4, np.uint8)
  if layer.shape != source.shape[:2] + (4,):
    raise RequestError(
        f"The paint layer is {layer.shape[1]}x{layer.shape[0]} "
        f"but the source is {source.shape[1]}x"
        f"{source.shape[0]}."
    )
  alpha_HxWx1 = layer[..., 3:].astype(np.float32) / 255.0
  stroke = source * (1 - alpha_HxWx1) + layer[..., :3] * alpha_HxWx1
  return np.round(stroke).astype(np.uint8), layer[..., 3] > 0


@dataclasses.dataclass(frozen=True)
class EditRequest:
  """What the page asks of one edit, checked."""

  variant: str
  knob: float
  seed: int
  alternatives: int
  label: int
  window: int | None = None  # Context ring of a windowed decode; None: full.

  @classmethod
  def parse(cls, body: dict, layout) -> "EditRequest":
    variant = body.get("variant", "none")
    try:
      guidance_lib.variant(variant)
    except ValueError as e:
      raise RequestError(str(e)) from e
    try:
      knob, seed = float(body.get("knob", 0.0)), int(body.get("seed", 0))
      alternatives, label = (
          int(body.get("alternatives", 1)),
          int(body.get("label", 0)),
      )
    except (TypeError, ValueError) as e:
      raise RequestError(f"Bad number in the request: {e}.") from e
    try:
      window = windows.parse_ring(body.get("window"))
      guidance_lib.validate(variant, knob)
      layout.check_label(label)
    except ValueError as e:
      raise RequestError(str(e)) from e
    if not 1 <= alternatives <= MAX_ALTERNATIVES:
      raise RequestError(
          f"alternatives must be 1 to {MAX_ALTERNATIVES}, "
          f"got {alternatives}."
      )
    return cls(variant, knob, seed, alternatives, label, window)


def edit_command(
    request: EditRequest, seed: int, run_flags: str, matmul_dtype: str
) -> str:
  """The `maskgit_edit.edit` command that makes the same edit from the PNGs
  the page offers for download (with the page editor's `matmul_dtype`)."""
  parts = (
      ["python", "-m", "maskgit_edit.edit"]
      + shlex.split(run_flags)
      + [
          "--source",
          "source.png",
          "--stroke",
          "stroke.png",
          "--mask",
          "mask.png",
          "--variant",
          request.variant,
          "--knob",
          f"{request.knob:g}",
          "--seed",
          str(seed),
          "--label",
          str(request.label),
      ]
      + ([] if request.window is None else ["--window", str(request.window)])
      + ([] if matmul_dtype == "float32" else ["--matmul_dtype", matmul_dtype])
      + ["--out", f"edited_seed{seed}.png"]
  )
  return " ".join(shlex.quote(p) for p in parts)


def token_mask_overlay(source_HxWx3, edited_hxw) -> np.ndarray:
  """float [H, W, 3]: the source, tinted red on the edited tokens' pixels,
  with the token grid drawn faintly."""
  source = images_lib.to_float(source_HxWx3)
  size, latent = source.shape[0], edited_hxw.shape[0]
  factor = size // latent
  region = np.kron(
      np.asarray(edited_hxw, np.float32), np.ones((factor, factor), np.float32)
  )[..., None]
  tinted = (
      source * (1 - 0.5 * region) + np.array([1.0, 0.1, 0.1]) * 0.5 * region
  )
  lines = np.zeros((size, size), bool)
  lines[::factor, :] = lines[:, ::factor] = True
  tinted[lines] = 0.8 * tinted[lines] + 0.2
  return tinted


# --- the model side -------------------------------------------------------------
class EditSession:
  """An `Editor` and what the page offers around it; one request at a time."""

  def __init__(
      self,
      editor: edit_lib.Editor,
      data_config=None,
      run_flags: str = "",
  ):
    self.editor = editor
    self.layout = editor.layout
    self.image_size = editor.image_size
    # Edits start late in the schedule (EditSettings); samples start at 0.
    self.generator = sampling.Sampler(
        editor.sampler.model,
        self.layout,
        dataclasses.replace(editor.settings.decode, start_iter=0),
    )
    self.class_names = list(self.layout.class_names) or [
        f"class {i}" for i in range(self.layout.num_classes)
    ]
    self.run_flags = run_flags
    self.test_source, self.test_unavailable = None, None
    if data_config is not None:
      try:
        self.test_source = data_lib.get_source(data_config, "test")
      except Exception as e:  # pylint: disable=broad-except
        self.test_unavailable = f"{type(e).__name__}: {e}"
    else:
      self.test_unavailable = "this run names no data set"
    self._lock = threading.Lock()

  @classmethod
  def from_runs(
      cls,
      run_dir=None,
      tokenizer_workdir=None,
      transformer_workdir=None,
      matmul_dtype="float32",
  ) -> "EditSession":
    """Loads a run folder (tokenizer/, maskgit/, optional iterate/, reweight/),
    two run folders, or by default the committed reference models
    (`artefacts.DEFAULT_DATA`); `matmul_dtype`: `EditSettings.matmul_dtype`."""
    if run_dir and (tokenizer_workdir or transformer_workdir):
      raise ValueError("Give --run or the two workdirs, not both.")
    settings = edit_lib.EditSettings(matmul_dtype=matmul_dtype)
    if run_dir:
      runs = artefacts.runs_in(run_dir)
      run_flags = (
          f"--tokenizer_workdir {shlex.quote(runs['tokenizer'])} "
          f"--transformer_workdir {shlex.quote(runs['maskgit'])}"
      )
      for name in ("iterate", "reweight"):
        if name in runs:
          run_flags += f" --{name}_workdir {shlex.quote(runs[name])}"
      editor = edit_lib.Editor.from_workdirs(
          runs["tokenizer"],
          runs["maskgit"],
          settings,
          iterate_workdir=runs.get("iterate"),
          reweight_workdir=runs.get("reweight"),
      )
      tokenizer_workdir = runs["tokenizer"]
    elif tokenizer_workdir or transformer_workdir:
      editor = edit_lib.Editor.from_workdirs(
          tokenizer_workdir, transformer_workdir, settings
      )
      run_flags = (
          f"--tokenizer_workdir {shlex.quote(tokenizer_workdir)} "
          f"--transformer_workdir {shlex.quote(transformer_workdir)}"
      )
    else:
      editor = edit_lib.Editor.from_workdirs(settings=settings)
      tokenizer_workdir = artefacts.pretrained_runs()["tokenizer"]
      run_flags = ""
    data_config = artefacts.load_run_config(tokenizer_workdir).get("data")
    return cls(editor, data_config, run_flags)

  def info(self) -> dict:
    runs = self.editor.available_runs()
    return {
        "image_size": self.image_size,
        "grid_side": self.layout.grid_side,
        "class_conditional": self.layout.class_conditional,
        "class_names": self.class_names
        if self.layout.class_conditional
        else [],
        "variants": [
            {
                "name": v.name,
                **dict(zip(("min", "max", "default"), v.slider)),
                "available": guidance_lib.missing_run(v.name, runs) is None,
            }
            for v in guidance_lib.REGISTRY.values()
        ],
        "num_test": len(self.test_source) if self.test_source else 0,
        "test_unavailable": self.test_unavailable,
        "max_alternatives": MAX_ALTERNATIVES,
    }

  def source(self, body: dict) -> dict:
    """A source image: a held-out test image, a fresh sample or an upload."""
    kind = body.get("kind")
    notice, label = None, None
    if kind == "test":
      if self.test_source is None:
        raise RequestError(f"No test images: {self.test_unavailable}.")
      index = int_field(body, "index", 0)
      if not 0 <= index < len(self.test_source):
        raise RequestError(
            f"Test image {index} does not exist (0 to "
            f"{len(self.test_source) - 1})."
        )
      images, labels = self.test_source.get(np.array([index]))
      image = np.asarray(images[0], np.uint8)
      if labels is not None and self.layout.class_conditional:
        label = int(labels[0])
    elif kind == "sample":
      label, seed = int_field(body, "label", 0), int_field(body, "seed", 0)
      try:
        self.layout.check_label(label)
      except ValueError as e:
        raise RequestError(str(e)) from e
      with self._lock:
        tokens = self.generator.generate(
            self.editor.params,
            jax.random.key(seed),
            1,
            labels_B=np.array([label]),
        )
        image = images_lib.to_uint8(self.editor.detokenize(tokens)[0])
    elif kind == "upload":
      image, notice = fit_to_size(
          decode_png(body.get("png"), "upload"), self.image_size
      )
    else:
      raise RequestError(
          f"Unknown source kind {kind!r}: test, sample or upload."
      )
    return {"png": encode_png(image), "label": label, "notice": notice}

  def edit(self, body: dict) -> dict:
    """Runs the edit the page asks for (see the module docstring)."""
    request = EditRequest.parse(body, self.layout)
    try:
      guidance_lib.check_runs(request.variant, self.editor.available_runs())
    except ValueError as e:
      raise RequestError(str(e)) from e
    source = np.asarray(
        decode_png(body.get("source"), "source").convert("RGB"), np.uint8
    )
    if source.shape[:2] != (self.image_size, self.image_size):
      raise RequestError(
          f"The source is {source.shape[1]}x{source.shape[0]}"
          f"; this model edits {self.image_size}x"
          f"{self.image_size} images."
      )
    layer_image = decode_png(body.get("layer"), "paint layer")
    if (
        "A" not in layer_image.getbands()
        and "transparency" not in layer_image.info
    ):
      raise RequestError(
          "The paint layer has no transparency: paint on a "
          "transparent layer."
      )
    layer = np.asarray(layer_image.convert("RGBA"), np.uint8)
    stroke, mask = stroke_and_mask(source, layer)
    if not mask.any():
      raise RequestError("Nothing is painted: paint a stroke first.")
    source_f = images_lib.to_float(source)[None]
    stroke_f = images_lib.to_float(stroke)[None]
    settings = self.editor.settings.decode
    steps = slice(settings.start_iter, settings.stop_iter or settings.num_steps)
    results = []
    with self._lock:
      source_tokens = self.editor.tokenize(source_f)
      for seed in range(request.seed, request.seed + request.alternatives):
        out = self.editor.edit(
            source_f,
            mask[None],
            jax.random.key(seed),
            strokes_BxHxWx3=stroke_f,
            labels_B=np.array([request.label]),
            variant=request.variant,
            knob=request.knob,
            source_tokens_Bxhxw=source_tokens,
            return_history=True,
            window=request.window,
        )
        history = np.clip(
            np.asarray(self.editor.detokenize(out["history"][0, steps])), 0, 1
        )
        results.append(
            {
                "seed": seed,
                "png": encode_png(out["images"][0]),
                "steps_png": encode_png(images_lib.grid(history, len(history))),
                "command": edit_command(
                    request,
                    seed,
                    self.run_flags,
                    self.editor.settings.matmul_dtype,
                ),
            }
        )
    return {
        "edits": results,
        "stroke_png": encode_png(stroke),
        "mask_png": encode_png(
            np.repeat(mask[..., None] * 255, 3, -1).astype(np.uint8)
        ),
        "token_mask_png": encode_png(
            token_mask_overlay(source, out["edited"][0])
        ),
    }


# --- HTTP ---------------------------------------------------------------------
def make_handler(session: EditSession):
  """A request handler class serving the page and the JSON API of `session`."""
  with open(PAGE_PATH, "rb") as f:
    page = f.read()
  routes = {"/api/source": session.source, "/api/edit": session.edit}

  class Handler(http.server.BaseHTTPRequestHandler):
    """GET / and /api/info; POST /api/source and /api/edit."""

    def _send(self, status: int, body: bytes, content_type: str):
      self.send_response(status)
      self.send_header("Content-Type", content_type)
      self.send_header("Content-Length", str(len(body)))
      self.end_headers()
      self.wfile.write(body)

    def _json(self, status: int, payload: dict):
      self._send(status, json.dumps(payload).encode(), "application/json")

    def do_GET(self):  # pylint: disable=invalid-name
      if self.path in ("/", "/index.html"):
        self._send(200, page, "text/html; charset=utf-8")
      elif self.path == "/api/info":
        self._json(200, session.info())
      else:
        self._json(404, {"error": f"No page {self.path}."})

    def do_POST(self):  # pylint: disable=invalid-name
      route = routes.get(self.path)
      if route is None:
        self._json(404, {"error": f"No API {self.path}."})
        return
      raw = None
      try:
        check_origin(self.headers, *self.server.server_address[:2])
        raw = self.rfile.read(request_length(self.headers))
        body = json.loads(raw or b"{}")
        if not isinstance(body, dict):
          raise RequestError("The request must be a JSON object.")
        self._json(200, route(body))
      except RequestError as e:
        if raw is None:  # Its body is left unread: close after answering.
          self.close_connection = True
        self._json(e.status, {"error": str(e)})
      except json.JSONDecodeError as e:
        self._json(400, {"error": f"The request is not JSON: {e}."})
      except Exception as e:  # pylint: disable=broad-except
        # One failed edit must leave the page usable: answer, log, go on.
        traceback.print_exc()
        self._json(500, {"error": f"{type(e).__name__}: {e}"})

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
      if os.environ.get("MASKGIT_EDIT_APP_LOG"):
        super().log_message(format, *args)

  return Handler


def serve(
    session: EditSession, host: str = "127.0.0.1", port: int = 8765
) -> http.server.ThreadingHTTPServer:
  """A server for `session` (call serve_forever(), or shutdown() to stop)."""
  return http.server.ThreadingHTTPServer((host, port), make_handler(session))


FLAGS = flags.FLAGS
flags.DEFINE_string(
    "run",
    None,
    "Run folder with tokenizer/ and maskgit/ "
    "(and optional iterate/, reweight/) subfolders.",
)
flags.DEFINE_string("tokenizer_workdir", None, "Tokenizer run.")
flags.DEFINE_string("transformer_workdir", None, "Transformer run.")
flags.DEFINE_string("host", "127.0.0.1", "Address to serve on.")
flags.DEFINE_integer("port", 8765, "Port to serve on.")
cli.add_matmul_dtype_flag(FLAGS)


def start(
    run_dir,
    tokenizer_workdir,
    transformer_workdir,
    host,
    port,
    matmul_dtype="float32",
):
  """Loads the models and binds the server (user errors: `cli.run`)."""
  if not 0 <= port <= 65535:
    raise ValueError(
        f"--port must be in 0..65535 (0: any free port), got {port}."
    )
  session = EditSession.from_runs(
      run_dir, tokenizer_workdir, transformer_workdir, matmul_dtype
  )
  return serve(session, host, port)


def main(argv):
  del argv
  server = cli.run(
      start,
      FLAGS.run,
      FLAGS.tokenizer_workdir,
      FLAGS.transformer_workdir,
      FLAGS.host,
      FLAGS.port,
      FLAGS.matmul_dtype,
  )
  print(
      f"Serving the edit page on http://{FLAGS.host}:{server.server_port}/ "
      "(Ctrl-C stops)",
      flush=True,
  )
  try:
    server.serve_forever()
  except KeyboardInterrupt:
    server.shutdown()


if __name__ == "__main__":
  absl_app.run(main, flags_parser=cli.parse_absl_flags)
