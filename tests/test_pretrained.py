"""Committed reference weights: export round trip, and the weights in the repo."""

import json
import os

import numpy as np
import pytest

from maskgit_edit import artefacts
from maskgit_edit import edit
from maskgit_edit import export as export_lib
from maskgit_edit import released
from maskgit_edit import train

from conftest import load_script, tiny_config

export = load_script("scripts/export_pretrained.py")
pytestmark = pytest.mark.xdist_group("tiny_runs")


@pytest.fixture(scope="module")
def exported(tiny_runs, tmp_path_factory):
  """The tiny runs plus tiny judge / reweight / iterate runs, exported."""
  root = tmp_path_factory.mktemp("runs")
  runs = {name: tiny_runs[name] for name in ("tokenizer", "maskgit")}
  for name, config, links in (
      ("judge", "judge_shapes.py", {}),
      ("reweight", "reweight.py", {"transformer_workdir": runs["maskgit"]}),
      ("iterate", "iterate.py", {"transformer_workdir": runs["maskgit"]}),
  ):
    runs[name] = str(root / name)
    train.train_and_evaluate(tiny_config(config, **links), runs[name])
  for name, workdir in runs.items():  # The exporter reads one run folder.
    if not os.path.exists(root / name):
      os.symlink(workdir, root / name)
  out = str(tmp_path_factory.mktemp("pretrained") / "shapes")
  export.main([f"--run={root}", f"--out={out}"])
  return runs, out


def test_export_writes_half_precision_runs_that_link_to_each_other(
    exported, tmp_path, monkeypatch
):
  runs, out = exported
  assert artefacts.load_run_config(os.path.join(out, "maskgit")).to_dict()[
      "tokenizer_workdir"
  ] == os.path.join(out, "tokenizer")
  raw = released.read_msgpack_params(
      artefacts.params_path(os.path.join(out, "maskgit"), "transformer")
  )
  assert {np.asarray(x).dtype for x in jax_leaves(raw)} == {np.dtype("float16")}
  monkeypatch.chdir(tmp_path)  # Links resolve from any directory.
  editor = edit.Editor.from_workdirs(
      os.path.join(out, "tokenizer"),
      os.path.join(out, "maskgit"),
      iterate_workdir=os.path.join(out, "iterate"),
      reweight_workdir=os.path.join(out, "reweight"),
  )
  original = artefacts.load_transformer(runs["maskgit"])[1]
  for a, b in zip(jax_leaves(editor.params), jax_leaves(original)):
    assert a.dtype == np.float32
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
  check = json.loads(open(os.path.join(out, export_lib.CHECK_NAME)).read())
  assert check == export_lib.check_figures(out, check["num_images"])
  assert os.path.exists(os.path.join(out, "MODEL_CARD.md"))


def test_a_run_that_does_not_fit_its_config_names_the_file(exported):
  _, out = exported
  path = os.path.join(out, "maskgit", "config.json")
  config = json.loads(open(path).read())
  config["model"]["hidden_size"] *= 2
  open(path, "w").write(json.dumps(config))
  with pytest.raises(
      ValueError,
      match=r"transformer_params.msgpack does not "
      r"fit the model: parameter .* has shape",
  ):
    artefacts.load_transformer(os.path.join(out, "maskgit"))


def test_missing_pretrained_folder_says_how_to_make_it():
  with pytest.raises(FileNotFoundError, match="--reference"):
    artefacts.pretrained_runs("no_such_data")


def test_committed_weights_keep_their_recorded_accuracy():
  folder = os.path.join(artefacts.PRETRAINED_DIR, artefacts.DEFAULT_DATA)
  recorded = json.loads(
      open(os.path.join(folder, export_lib.CHECK_NAME)).read()
  )
  measured = export_lib.check_figures(folder, recorded["num_images"])
  # Float noise may flip a near-tie argmax: allow 2 of the masked tokens.
  masked = recorded["num_images"] * 64 // 2
  assert (
      abs(measured["masked_accuracy"] - recorded["masked_accuracy"])
      <= 2 / masked
  )
  np.testing.assert_allclose(
      measured["masked_nll"], recorded["masked_nll"], atol=1e-3
  )


def test_committed_models_edit_without_the_dataset(monkeypatch):
  from maskgit_edit import data as data_lib  # pylint: disable=g-import-not-at-top
  from maskgit_edit.data import fashion_mnist  # pylint: disable=g-import-not-at-top

  monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", "/no/dataset/here")
  monkeypatch.setenv("TFDS_DATA_DIR", "/no/dataset/here")
  runs = artefacts.pretrained_runs()
  for name in ("tokenizer", "judge"):
    config = artefacts.load_run_config(runs[name]).data
    test = data_lib.get_source(config, "test")
    assert len(test) == export_lib.NUM_HELD_OUT
    with pytest.raises(FileNotFoundError, match="apt-get install"):
      data_lib.get_source(config, "train")


def jax_leaves(tree):
  import jax  # pylint: disable=g-import-not-at-top

  return [np.asarray(x) for x in jax.tree.leaves(tree)]


@pytest.mark.parametrize("matmul_dtype", ["float32", "bfloat16"])
def test_editor_without_run_folders_edits_with_the_committed_models(
    matmul_dtype,
):
  from maskgit_edit import data as data_lib  # pylint: disable=g-import-not-at-top
  from maskgit_edit import images as images_lib  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top

  editor = edit.Editor.from_workdirs(
      settings=edit.EditSettings(matmul_dtype=matmul_dtype)
  )
  assert editor.sampler.model.matmul_dtype == matmul_dtype
  for params in (editor.params, editor.iterative_params):
    kernel = params["MlmLayer_0"]["mlm_dense"]["kernel"]
    assert kernel.dtype == np.dtype(matmul_dtype)
  assert editor.kernels["learned"] is not None
  data_config = artefacts.load_run_config(
      artefacts.pretrained_runs()["tokenizer"]
  ).data
  images, labels = data_lib.get_source(data_config, "test").get(np.arange(2))
  sources = images_lib.to_float(images)
  masks = np.zeros((2, 32, 32), bool)
  masks[:, 8:16, 8:16] = True
  out = editor.edit(sources, masks, jax.random.key(0), labels_B=labels)
  # Tokens of 4 px, dilated by one: pixel rows 4-19 are regenerated.
  edited_pixels = np.repeat(np.repeat(out["edited"], 4, 1), 4, 2)
  assert not edited_pixels[:, :4].any() and edited_pixels[:, 8:16, 8:16].all()
  np.testing.assert_array_equal(out["images"][:, :4], sources[:, :4])
  assert np.abs(out["images"] - sources)[:, 8:16, 8:16].max() > 0.05
