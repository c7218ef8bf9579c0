r"""Edit images from pixel masks (and strokes) with a trained MaskGIT.

Python (no run folders: the committed reference Fashion-MNIST models; give
`Editor.from_workdirs` a tokenizer and a transformer run folder for yours):

  >>> import jax
  >>> import numpy as np
  >>> from maskgit_edit import artefacts, data, images
  >>> editor = Editor.from_workdirs()
  >>> config = artefacts.load_run_config(artefacts.pretrained_runs()["tokenizer"])
  >>> pixels, labels_B = data.get_source(config.data, "test").get(np.arange(2))
  >>> sources_BxHxWx3 = images.to_float(pixels)
  >>> masks_BxHxW = np.zeros((2, 32, 32), bool)
  >>> masks_BxHxW[:, 8:20, 8:20] = True
  >>> red = np.array([1.0, 0.0, 0.0], np.float32)
  >>> strokes_BxHxWx3 = np.where(masks_BxHxW[..., None], red, sources_BxHxWx3)
  >>> out = editor.edit(sources_BxHxWx3, masks_BxHxW, jax.random.key(0),
  ...                   strokes_BxHxWx3=strokes_BxHxWx3, labels_B=labels_B,
  ...                   variant="self_fixed", knob=2.0)
  >>> out["images"].shape, out["tokens"].shape
  ((2, 32, 32, 3), (2, 8, 8))
  >>> bool((out["images"][:, :4] == sources_BxHxWx3[:, :4]).all())  # Far rows.
  True

CLI (PNG files, one edit; images in [0, 1] RGB, mask: non-zero = edit):
  python -m maskgit_edit.edit --tokenizer_workdir runs/fashion_mnist/tokenizer \
      --transformer_workdir runs/fashion_mnist/maskgit --source s.png \
      --stroke k.png --mask m.png --label 1 --variant self_fixed --knob 2 \
      --out e.png
  python -m maskgit_edit.edit --config configs/imagenet256.py:edit \
      --source s.png --stroke k.png --mask m.png --label 207 --out e.png
(`--config` gives run folders, label, seed and EditSettings; flags override;
without run folders the committed pretrained/fashion_mnist models edit.)

Pipeline: pixel mask -> edited tokens (every token its patch touches, plus
`dilation`) -> guide tokens = codes of the stroke image -> guided parallel
decode of the edited tokens only (all others are kept) -> pixels ->
composite over the source (hard or feathered). Inpainting/outpainting is the
same call without a stroke (variant "none").
"""

import copy
import dataclasses
import warnings

from absl import app
from absl import flags
import jax
from ml_collections import config_flags
import numpy as np

from maskgit_edit import artefacts
from maskgit_edit import cli
from maskgit_edit import images as images_lib
from maskgit_edit import models
from maskgit_edit import regions
from maskgit_edit.decoding import sampling
from maskgit_edit import tokenizing
from maskgit_edit.decoding import guidance as guidance_lib
from maskgit_edit.decoding import windows


@dataclasses.dataclass(frozen=True)
class EditSettings:
  """Editing defaults (those of the released MaskGIT editing demo)."""

  decode: sampling.DecodeSettings = sampling.EDIT_DECODE
  dilation: int = 1
  composite: str = "feather"
  feather_sigma_px: float = 1.0
  kernel: str = "l2"  # self_fixed kernel: "identity" or "l2".
  # Windowed decoding (`decoding.windows`): the context ring k in tokens
  # around the edited ones, or None to decode over the whole grid.
  window: int | None = None
  # Operand dtype of the transformer's dense products
  # (`models.transformer.kernels_in`): "bfloat16" decoded about 2x faster on a
  # CPU with AVX-512 BF16 (docs/decoding.md).
  matmul_dtype: str = "float32"

  @classmethod
  def from_config(cls, cfg) -> "EditSettings":
    """Settings from a config's `decode` section and same-named fields.

    Fields `cfg` lacks keep their defaults (so do those of `decode`).
    """
    kwargs = {
        f.name: cfg[f.name]
        for f in dataclasses.fields(cls)
        if f.name != "decode" and f.name in cfg
    }
    if "decode" in cfg:
      kwargs["decode"] = sampling.DecodeSettings.from_config(cfg["decode"])
    return cls(**kwargs)


class Editor:
  """Tokenizer + transformer(s) + one compiled decode for every variant."""

  def __init__(
      self,
      tokenizer,
      tokenizer_params,
      transformer,
      transformer_params,
      layout,
      settings: EditSettings = EditSettings(),
      *,
      iterative_params=None,
      learned_kernel=None,
  ):
    """Args:
      tokenizer, tokenizer_params: VQGAN module and params.
      transformer, transformer_params: MaskGIT module and params.
      layout: `models.TokenLayout` of the transformer.
      settings: `EditSettings`.
      iterative_params: transformer params tuned by `iterate` (variant
        "iterative", which is an error without them).
      learned_kernel: K [C, C] trained by `reweight` ("self_learned").

    `params` and `iterative_params` keep their dense kernels in
    `settings.matmul_dtype`, for `sampler.model` (which multiplies in it).
    """
    self.tokenizer, self.tokenizer_params = tokenizer, tokenizer_params
    self.layout, self.settings = layout, settings
    stored = lambda p: models.transformer.kernels_in(p, settings.matmul_dtype)
    self.params = stored(transformer_params)
    self.iterative_params = (
        None if iterative_params is None else stored(iterative_params)
    )
    transformer = transformer.clone(matmul_dtype=settings.matmul_dtype)
    codebook = tokenizer_params["quantizer"]["codebook"]
    size = codebook.shape[0]
    if size != layout.codebook_size:
      raise ValueError(
          f"Tokenizer codebook has {size} codes but the "
          f"transformer expects {layout.codebook_size}."
      )
    if learned_kernel is not None and np.shape(learned_kernel) != (size, size):
      raise ValueError(
          f"Learned kernel has shape {np.shape(learned_kernel)}, "
          f"but the tokenizer's codebook has {size} codes: "
          f"expected ({size}, {size})."
      )
    if settings.kernel not in ("l2", "identity"):
      raise ValueError(f"Unknown kernel {settings.kernel!r}: l2 or identity.")
    fixed = (
        guidance_lib.l2_kernel(codebook)
        if settings.kernel == "l2"
        else guidance_lib.identity_kernel(size)
    )
    self.kernels = {"fixed": fixed, "learned": learned_kernel}
    self.sampler = sampling.Sampler(transformer, layout, settings.decode)
    self._tokenizer = tokenizing.Tokenizer(tokenizer, tokenizer_params)

  @classmethod
  def from_workdirs(
      cls,
      tokenizer_workdir: str | None = None,
      transformer_workdir: str | None = None,
      settings: EditSettings = EditSettings(),
      *,
      iterate_workdir: str | None = None,
      reweight_workdir: str | None = None,
  ):
    """Loads runs; with neither tokenizer nor transformer run given, the
    committed reference models (`pretrained/fashion_mnist/`, with their
    `iterate` and `reweight` runs unless others are given)."""
    if tokenizer_workdir is None and transformer_workdir is None:
      runs = artefacts.pretrained_runs()
      tokenizer_workdir, transformer_workdir = (
          runs["tokenizer"],
          runs["maskgit"],
      )
      iterate_workdir = iterate_workdir or runs.get("iterate")
      reweight_workdir = reweight_workdir or runs.get("reweight")
    elif tokenizer_workdir is None or transformer_workdir is None:
      raise ValueError(
          "Give both a tokenizer and a transformer run, or "
          "neither (the committed pretrained/fashion_mnist models)."
      )
    tokenizer, tok_params, _ = artefacts.load_tokenizer(tokenizer_workdir)
    transformer, params, layout, _ = artefacts.load_transformer(
        transformer_workdir
    )
    iterative = learned = None
    if iterate_workdir:
      abstract = jax.tree.map(
          lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params
      )
      iterative = artefacts.load_params(
          iterate_workdir, "transformer", abstract
      )
    if reweight_workdir:
      learned = artefacts.load_kernel(reweight_workdir)
    return cls(
        tokenizer,
        tok_params,
        transformer,
        params,
        layout,
        settings,
        iterative_params=iterative,
        learned_kernel=learned,
    )

  def on_device(self, device) -> "Editor":
    """A copy whose params live on `device`, so that its edits run there."""
    put = lambda tree: jax.device_put(tree, device)
    moved = copy.copy(self)
    moved.tokenizer_params = put(self.tokenizer_params)
    moved.params, moved.iterative_params = (
        put(self.params),
        put(self.iterative_params),
    )
    moved.kernels = put(self.kernels)
    moved._tokenizer = tokenizing.Tokenizer(
        self.tokenizer, moved.tokenizer_params
    )
    return moved

  @property
  def image_size(self) -> int:
    """Side in pixels of the images the models edit."""
    return self.layout.grid_side * self._tokenizer.downsample_factor

  def tokenize(self, images_BxHxWx3):
    return self._tokenizer.tokenize(images_BxHxWx3)

  def detokenize(self, tokens_Bxhxw):
    return self._tokenizer.detokenize(tokens_Bxhxw)

  def available_runs(self) -> set[str]:
    """Trainers (beyond tokenizer and transformer) whose runs it holds."""
    return {
        trainer
        for trainer, artefact in (
            ("reweight", self.kernels["learned"]),
            ("iterate", self.iterative_params),
        )
        if artefact is not None
    }

  def _variant_inputs(self, variant, tuned):
    spec = guidance_lib.variant(variant)
    guidance_lib.check_runs(variant, self.available_runs())
    tuned = spec.tuned if tuned is None else tuned
    if tuned and self.iterative_params is None:
      raise ValueError(
          f"Variant {variant!r} decoded by the tuned transformer needs a run"
          " of the iterate trainer: give its folder as iterate_workdir."
      )
    kernel = (
        self.kernels[spec.kernel]
        if spec.kernel
        else np.zeros((self.layout.codebook_size,) * 2, np.float32)
    )
    return (self.iterative_params if tuned else self.params), kernel

  def edit(
      self,
      sources_BxHxWx3,
      masks_BxHxW,
      rng,
      *,
      strokes_BxHxWx3=None,
      labels_B=None,
      variant: str = "none",
      knob=0.0,
      source_tokens_Bxhxw=None,
      return_history: bool = False,
      window: int | None | str = "settings",
      tuned: bool | None = None,
  ):
    """Edits a batch; returns a dict of numpy arrays.

    Args:
      sources_BxHxWx3: float images in [0, 1].
      masks_BxHxW: bool pixel masks of the edit (the stroke's region).
      rng: typed key; the same key across variants gives paired samples.
      strokes_BxHxWx3: stroked images (required by every guided variant).
      labels_B: class labels for class-conditional models.
      variant, knob: see `decoding.guidance`.
      source_tokens_Bxhxw: tokens of the sources if already known.
      return_history: also return the token grid after every decoding step.
      window: context ring of a windowed decode, None for the whole grid,
        "settings" (default) for `settings.window`.
      tuned: decode with the `iterate`-tuned transformer (True) or the base
        one (False); None (default): the tuned one for "iterative" only.

    Returns:
      dict with "images" (composited), "decoded" (tokenizer output before
      compositing), "tokens" [B, h, w], "edited" token mask [B, h, w], and
      with return_history "history" [B, T, h, w]: after each of the T =
      num_steps steps, its samples at the positions still unknown before it
      and the committed tokens elsewhere (zeros for steps before start_iter).
    """
    sources = np.asarray(sources_BxHxWx3, np.float32)
    masks = np.asarray(masks_BxHxW)
    if strokes_BxHxWx3 is None and variant != "none":
      raise ValueError(f"Variant {variant!r} needs stroke images.")
    kinds = regions.validate_edit_inputs(
        sources, strokes_BxHxWx3, masks, self.layout.grid_side
    )
    if sources.shape[1] != self.image_size:
      raise ValueError(
          f"Images are {sources.shape[1]} px but these models edit "
          f"{self.image_size} px images."
      )
    guidance_lib.validate(variant, float(np.max(knob)))
    empty = np.array([k is regions.MaskKind.EMPTY for k in kinds])
    if empty.any():
      warnings.warn(
          f"{empty.sum()} edit(s) have an empty mask: their source "
          "is returned unchanged."
      )
    edited = regions.pixel_to_token_mask(
        masks, self.layout.grid_side, self.settings.dilation
    )
    if source_tokens_Bxhxw is None:
      source_tokens_Bxhxw = self.tokenize(sources)
    guide = (
        self.tokenize(strokes_BxHxWx3)
        if strokes_BxHxWx3 is not None
        else source_tokens_Bxhxw
    )
    params, kernel = self._variant_inputs(variant, tuned)
    # The positions sdedit re-masks come from their own stream of `rng`.
    guidance = guidance_lib.make_guidance(
        variant,
        knob,
        guide,
        edited,
        kernel,
        rng=jax.random.fold_in(rng, 1),
        schedule=self.settings.decode.schedule,
    )
    tokens = self.sampler(
        params,
        source_tokens_Bxhxw,
        edited,
        rng,
        labels_B=labels_B,
        guidance=guidance,
        return_history=return_history,
        window=(self.settings.window if window == "settings" else window),
    )
    history = None
    if return_history:
      tokens, history = tokens
    decoded = np.asarray(self.detokenize(tokens))
    region = regions.token_to_pixel_mask(edited, sources.shape[1])
    composited = np.asarray(
        regions.composite(
            sources,
            np.clip(decoded, 0, 1),
            region,
            self.settings.composite,
            sigma_px=self.settings.feather_sigma_px,
            core_mask_BxHxW=masks,
        )
    )
    composited[empty] = sources[empty]
    out = {
        "images": composited,
        "decoded": decoded,
        "tokens": np.asarray(tokens),
        "edited": edited,
    }
    if return_history:
      out["history"] = np.asarray(history)
    return out


def define_flags(
    flag_values: flags.FlagValues = flags.FLAGS, argv: list[str] | None = None
) -> None:
  """Defines the CLI's flags on `flag_values`.

  Called when the CLI starts rather than on import, since `--config` would
  clash with `maskgit_edit.train`'s in a process that imports both.

  Args:
    flag_values: where to define them.
    argv: the command line to be parsed, if not `sys.argv` (`--config.x=y`
      overrides are found in it).
  """
  config_flags.DEFINE_config_file(
      "config",
      None,
      "Optional config (e.g. configs/imagenet256.py:edit) "
      "giving the run folders, label, seed and EditSettings (`decode`, "
      "dilation, composite, feather_sigma_px, kernel, window, "
      "matmul_dtype); flags given on the command line override it.",
      flag_values=flag_values,
      sys_argv=argv,
  )
  on = {"flag_values": flag_values}
  flags.DEFINE_string("tokenizer_workdir", None, "Tokenizer run.", **on)
  flags.DEFINE_string("transformer_workdir", None, "Transformer run.", **on)
  flags.DEFINE_string("iterate_workdir", None, "`iterate` run.", **on)
  flags.DEFINE_string("reweight_workdir", None, "`reweight` run.", **on)
  flags.DEFINE_string("source", None, "Source PNG.", **on)
  flags.DEFINE_string("stroke", None, "Stroke PNG (optional).", **on)
  flags.DEFINE_string("mask", None, "Mask PNG (non-zero = edit).", **on)
  flags.DEFINE_integer(
      "label",
      None,
      "Class label (required by class-conditional models).",
      **on,
  )
  flags.DEFINE_enum(
      "variant", "none", guidance_lib.names(), "Guidance variant.", **on
  )
  flags.DEFINE_float("knob", 0.0, "Variant knob (see README).", **on)
  flags.DEFINE_integer("seed", 0, "Sampling seed.", **on)
  flags.DEFINE_string(
      "window",
      "full",
      "Windowed decoding: 'full' (the "
      "whole token grid) or the context ring k in tokens "
      "around the edited ones.",
      **on,
  )
  cli.add_matmul_dtype_flag(flag_values)
  cli.add_decode_flags(flag_values)
  flags.DEFINE_string("out", "edited.png", "Output PNG.", **on)


def run(flag_values: flags.FlagValues) -> str:
  """Makes the edit that parsed `define_flags` flags ask for; returns the PNG path."""
  config = flag_values["config"].value

  def setting(name):
    # A flag given on the command line beats the config, which beats the
    # flag's default.
    flag = flag_values[name]
    if flag.present or config is None or name not in config:
      return flag.value
    return config[name]

  tokenizer_workdir = setting("tokenizer_workdir")
  transformer_workdir = setting("transformer_workdir")
  if bool(tokenizer_workdir) != bool(transformer_workdir):
    raise ValueError(
        "Give both --tokenizer_workdir and "
        "--transformer_workdir (or a --config that names "
        "them), or neither for the committed Fashion-MNIST models."
    )
  settings = (
      EditSettings() if config is None else EditSettings.from_config(config)
  )
  settings = dataclasses.replace(
      settings,
      window=windows.parse_ring(setting("window")),
      matmul_dtype=setting("matmul_dtype"),
  )
  settings = dataclasses.replace(
      settings,
      decode=dataclasses.replace(
          settings.decode, **cli.decode_overrides(flag_values)
      ),
  )
  editor = Editor.from_workdirs(
      tokenizer_workdir,
      transformer_workdir,
      settings,
      iterate_workdir=setting("iterate_workdir"),
      reweight_workdir=setting("reweight_workdir"),
  )
  stroke_png = flag_values["stroke"].value
  source, stroke, mask = regions.load_edit_triplet(
      flag_values["source"].value,
      stroke_png or flag_values["source"].value,
      flag_values["mask"].value,
  )
  if not mask.any():
    raise ValueError(
        f"The mask {flag_values['mask'].value} marks no pixel to edit."
    )
  label, layout = setting("label"), editor.layout
  if layout.class_conditional and label is None:
    raise ValueError(
        f"This model is class-conditional: give --label "
        f"(0 to {layout.num_classes - 1})."
    )
  label = label or 0
  layout.check_label(label)
  out = editor.edit(
      source[None],
      mask[None],
      jax.random.key(setting("seed")),
      strokes_BxHxWx3=stroke[None] if stroke_png else None,
      labels_B=np.array([label]),
      variant=flag_values["variant"].value,
      knob=flag_values["knob"].value,
  )
  return images_lib.save_png(out["images"][0], flag_values["out"].value)


def main(argv):
  del argv
  print(cli.run(run, flags.FLAGS))


if __name__ == "__main__":
  define_flags()
  flags.mark_flags_as_required(["source", "mask"])
  app.run(main, flags_parser=cli.parse_absl_flags)
