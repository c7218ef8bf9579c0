"""Editing with every guidance variant, and the reweight / iterate trainers."""

import dataclasses
import os

import flax.serialization
import jax
import numpy as np
import pytest

from maskgit_edit import artefacts
from maskgit_edit import compiling
from maskgit_edit import data as data_lib
from maskgit_edit import edit as edit_lib
from maskgit_edit import images as images_lib
from maskgit_edit import train
from maskgit_edit import trainers
from maskgit_edit.decoding import guidance as guidance_lib

from conftest import ROOT
from conftest import tiny_config

pytestmark = pytest.mark.xdist_group("tiny_runs")

B = 4


@pytest.fixture(scope="module")
def editor(tiny_runs):
  """The tiny models, with the base params standing in for an iterate run."""
  base = edit_lib.Editor.from_workdirs(
      tiny_runs["tokenizer"], tiny_runs["maskgit"]
  )
  base.iterative_params = base.params
  return base


@pytest.fixture(scope="module")
def batch(tiny_runs):
  config = artefacts.load_run_config(tiny_runs["tokenizer"])
  sources, labels = data_lib.get_source(config.data, "test").get(np.arange(B))
  sources = images_lib.to_float(sources)
  size = sources.shape[1]
  masks = np.zeros((B, size, size), bool)
  masks[:, 4:10, 3:9] = True
  strokes = sources.copy()
  strokes[masks] = np.array([1.0, 0.2, 0.1])
  return sources, strokes, masks, labels


def run(editor, batch, variant="none", knob=0.0, seed=0, **kw):
  sources, strokes, masks, labels = batch
  return editor.edit(
      sources,
      masks,
      jax.random.key(seed),
      strokes_BxHxWx3=strokes,
      labels_B=labels,
      variant=variant,
      knob=knob,
      **kw,
  )


@pytest.mark.parametrize(
    "variant", ["context", "self_fixed", "iterative", "zero_shot"]
)
def test_knob_zero_is_the_baseline(editor, batch, variant):
  base = run(editor, batch)
  out = run(editor, batch, variant, 0.0)
  np.testing.assert_array_equal(base["tokens"], out["tokens"])


def test_full_strength_sdedit_is_the_baseline(editor, batch):
  base = run(editor, batch)
  out = run(editor, batch, "sdedit", 1.0)
  np.testing.assert_array_equal(base["tokens"], out["tokens"])


@pytest.mark.parametrize(
    "variant,knob",
    [
        ("none", 0.0),
        ("sdedit", 0.5),
        ("context", 1.0),
        ("self_fixed", 3.0),
        ("iterative", 1.0),
        ("zero_shot", 0.5),
    ],
)
def test_unedited_tokens_and_pixels_never_change(editor, batch, variant, knob):
  sources = batch[0]
  out = run(editor, batch, variant, knob)
  source_tokens = np.asarray(editor.tokenize(sources))
  edited = out["edited"]
  np.testing.assert_array_equal(out["tokens"][~edited], source_tokens[~edited])
  outside = ~np.repeat(np.repeat(edited, 2, 1), 2, 2)
  np.testing.assert_array_equal(out["images"][outside], sources[outside])


def test_strong_self_guidance_and_full_zero_shot_copy_the_stroke(editor, batch):
  guide = np.asarray(editor.tokenize(batch[1]))
  for variant, knob in (
      ("self_fixed", 1e4),
      ("zero_shot", 1.0),
      ("sdedit", 0.0),
  ):
    out = run(editor, batch, variant, knob)
    edited = out["edited"]
    np.testing.assert_array_equal(out["tokens"][edited], guide[edited])


def test_identity_and_l2_kernels_differ(tiny_runs, batch):
  outs = []
  for kernel in ("identity", "l2"):
    settings = edit_lib.EditSettings(kernel=kernel)
    editor = edit_lib.Editor.from_workdirs(
        tiny_runs["tokenizer"], tiny_runs["maskgit"], settings
    )
    outs.append(run(editor, batch, "self_fixed", 2.0)["tokens"])
  assert not np.array_equal(*outs)


def test_paired_seeds(editor, batch):
  a = run(editor, batch, "context", 0.5, seed=3)
  b = run(editor, batch, "context", 0.5, seed=3)
  np.testing.assert_array_equal(a["images"], b["images"])


def test_bad_edit_inputs(editor, batch):
  sources, strokes, masks, labels = batch
  key = jax.random.key(0)
  with pytest.raises(ValueError):
    editor.edit(sources, masks[:, :-2, :-2], key, labels_B=labels)
  with pytest.raises(ValueError):
    editor.edit(
        sources,
        masks,
        key,
        strokes_BxHxWx3=strokes[:, :-2],
        labels_B=labels,
        variant="context",
        knob=0.5,
    )
  with pytest.raises(ValueError, match="Unknown variant"):
    editor.edit(
        sources,
        masks,
        key,
        strokes_BxHxWx3=strokes,
        labels_B=labels,
        variant="telepathy",
        knob=1.0,
    )
  with pytest.raises(ValueError, match="fraction"):
    editor.edit(
        sources,
        masks,
        key,
        strokes_BxHxWx3=strokes,
        labels_B=labels,
        variant="context",
        knob=1.5,
    )
  with pytest.raises(ValueError, match="needs stroke"):
    editor.edit(
        sources, masks, key, labels_B=labels, variant="self_fixed", knob=1.0
    )


def test_empty_mask_returns_the_source_with_a_warning(editor, batch):
  sources, strokes, masks, labels = batch
  masks = masks.copy()
  masks[0] = False
  with pytest.warns(UserWarning, match="empty mask"):
    out = editor.edit(
        sources,
        masks,
        jax.random.key(0),
        strokes_BxHxWx3=strokes,
        labels_B=labels,
    )
  np.testing.assert_array_equal(out["images"][0], sources[0])


def test_full_mask_is_plain_generation(editor, batch):
  sources, _, masks, labels = batch
  out = editor.edit(
      sources, np.ones_like(masks), jax.random.key(0), labels_B=labels
  )
  assert out["edited"].all()


def _loss_before_after(config, workdir):
  task = trainers.make_task(config, workdir)
  initial = compiling.one_off_jit(task.init_state)(
      jax.random.key(config.seed), task.initial_params()
  )
  final, _ = train.train_and_evaluate(config, workdir)
  batch = task.batch(0)
  rng = jax.random.key(1)
  step = jax.jit(task.train_step)
  before = float(step(initial, batch, rng)[1]["loss"])
  after = float(step(final, batch, rng)[1]["loss"])
  return before, after, initial, final


@pytest.mark.parametrize("source", ["strokes", "samples"])
def test_reweight_lowers_its_loss_and_moves_k(tiny_runs, tmp_path, source):
  config = tiny_config(
      "reweight.py",
      transformer_workdir=tiny_runs["maskgit"],
      total_steps=10,
  )
  config.reweight.guide_source = source
  before, after, initial, final = _loss_before_after(config, str(tmp_path))
  assert after < before
  assert not np.allclose(initial["kernel"], final["kernel"])
  kernel = artefacts.load_kernel(str(tmp_path))
  np.testing.assert_array_equal(kernel, final["kernel"])
  editor = edit_lib.Editor.from_workdirs(
      tiny_runs["tokenizer"],
      tiny_runs["maskgit"],
      reweight_workdir=str(tmp_path),
  )
  assert editor.kernels["learned"].shape == kernel.shape


def test_iterate_lowers_its_loss_and_loads_for_editing(
    tiny_runs, tmp_path, batch
):
  config = tiny_config(
      "iterate.py",
      transformer_workdir=tiny_runs["maskgit"],
      total_steps=10,
  )
  config.optim.lr = 1e-3
  before, after, _, _ = _loss_before_after(config, str(tmp_path))
  assert after < before
  editor = edit_lib.Editor.from_workdirs(
      tiny_runs["tokenizer"],
      tiny_runs["maskgit"],
      iterate_workdir=str(tmp_path),
  )
  out = run(editor, batch, "iterative", 1.0)
  assert out["images"].shape == batch[0].shape


def test_learned_kernel_of_the_wrong_codebook_size(tiny_runs, tmp_path):
  path = artefacts.kernel_path(str(tmp_path))
  with open(path, "wb") as f:
    f.write(
        flax.serialization.msgpack_serialize(
            {"params": {"kernel": np.zeros((7, 7), np.float32)}}
        )
    )
  with pytest.raises(ValueError, match="codebook"):
    edit_lib.Editor.from_workdirs(
        tiny_runs["tokenizer"],
        tiny_runs["maskgit"],
        reweight_workdir=str(tmp_path),
    )
  assert os.path.exists(path)


def test_variants_need_their_runs_and_say_which(tiny_runs, batch):
  bare = edit_lib.Editor.from_workdirs(
      tiny_runs["tokenizer"], tiny_runs["maskgit"]
  )
  for variant, run_name in (
      ("iterative", "iterate"),
      ("self_learned", "reweight"),
  ):
    with pytest.raises(ValueError, match=run_name):
      run(bare, batch, variant, 1.0)
  with pytest.raises(ValueError, match="iterate"):
    run(bare, batch, "none", tuned=True)


def test_a_registered_variant_reaches_the_editor_study_page_and_readme(
    editor, batch, monkeypatch
):
  """A new variant is one registry record (here one that sets an existing
  field of the decode loop): the editor decodes it, and the study, the page
  and the README's table list it."""
  from maskgit_edit import app  # pylint: disable=g-import-not-at-top
  from maskgit_edit.study import settings as settings_lib  # pylint: disable=g-import-not-at-top

  toy = dataclasses.replace(
      guidance_lib.REGISTRY["self_fixed"],
      name="toy",
      meaning="self-guidance under another name",
      columns=(("Toy", 2.0),),
      needs="iterate",
  )
  monkeypatch.setitem(guidance_lib.REGISTRY, "toy", toy)
  np.testing.assert_array_equal(
      run(editor, batch, "toy", 2.0)["tokens"],
      run(editor, batch, "self_fixed", 2.0)["tokens"],
  )
  assert settings_lib.select_variants({"toy": toy.study_knobs}, {"iterate"})
  with pytest.raises(ValueError, match="'toy' needs a run of the iterate"):
    settings_lib.select_variants({"toy": (1.0,)}, set())
  assert settings_lib.comparison_columns()[-1] == settings_lib.Column(
      "Toy", "toy", 2.0
  )
  assert "| `toy` | lambda | >= 0 | self-guidance under" in (
      guidance_lib.markdown_table()
  )
  session = app.EditSession(editor, None, "")
  offered = {v["name"]: v for v in session.info()["variants"]}
  assert offered["toy"]["available"] and offered["toy"]["max"] == 8.0


def test_the_readme_variant_table_is_the_registry():
  with open(os.path.join(ROOT, "README.md")) as f:
    assert guidance_lib.markdown_table() in f.read()
