"""Released checkpoints as run folders: scripts/import_released.py, configs/imagenet*.py, edit CLI.

The golden small files (tests/data/golden_small) stand in for the released
ImageNet ones: same format and module trees, sizes from their config.json.
"""

import json
import os
import pathlib

from absl import flags
import jax
import numpy as np
import pytest
from flax import serialization, traverse_util
from PIL import Image

from maskgit_edit import artefacts
from maskgit_edit import cli
from maskgit_edit import config_files
from maskgit_edit import data as data_lib
from maskgit_edit import edit
from maskgit_edit import images as images_lib
from maskgit_edit import models
from maskgit_edit import released
from maskgit_edit import released_runs
from maskgit_edit.decoding import sampling
from conftest import load_script

ROOT = pathlib.Path(__file__).parent.parent
GOLDEN = ROOT / "tests" / "data" / "golden_small"
GOLDEN_TRANSFORMER = GOLDEN / "maskgit_checkpoint"
GOLDEN_TOKENIZER = GOLDEN / "tokenizer_checkpoint"
SIDE, LATENT, CODEBOOK, CLASSES = 16, 8, 64, 10


def _load_script():
  return load_script("scripts/import_released.py")


import_released = _load_script()


def _import(
    out,
    *extra,
    transformer=GOLDEN_TRANSFORMER,
    tokenizer=GOLDEN_TOKENIZER,
    sizes=("--sizes_from", str(GOLDEN / "config.json")),
):
  return import_released.main(
      [
          "--transformer",
          str(transformer),
          "--tokenizer",
          str(tokenizer),
          *sizes,
          "--out",
          str(out),
          *extra,
      ]
  )


def _raw_params(path):
  return serialization.msgpack_restore(pathlib.Path(path).read_bytes())[
      "params"
  ]


def _assert_trees_equal(actual, expected):
  flat_actual = traverse_util.flatten_dict(actual, sep="/")
  flat_expected = traverse_util.flatten_dict(expected, sep="/")
  assert flat_actual.keys() == flat_expected.keys()
  for path, value in flat_expected.items():
    np.testing.assert_array_equal(
        np.asarray(flat_actual[path]), value, err_msg=path
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """The golden files imported without --data."""
  return _import(tmp_path_factory.mktemp("import") / "golden")


@pytest.fixture(scope="module")
def editors(runs):
  """Editors of the imported runs by the `edit` and `fast_edit` configs."""
  return {
      mode: edit.Editor.from_workdirs(
          runs["tokenizer"],
          runs["maskgit"],
          edit.EditSettings.from_config(
              config_files.load(f"{ROOT}/configs/imagenet256.py:{mode}")
          ),
      )
      for mode in ("edit", "fast_edit")
  }


@pytest.fixture(scope="module")
def editor(editors):
  return editors["edit"]


@pytest.fixture(scope="module")
def scene():
  """A 16 px shapes image, its label, a box mask and a red stroke in the box."""
  config = data_lib.default_data_config()
  config.update(image_size=SIDE, num_test=1)
  images, labels = data_lib.load_images(config, "test", 1)
  source_HxWx3 = images_lib.to_float(images[0])
  mask_HxW = np.zeros((SIDE, SIDE), bool)
  mask_HxW[5:9, 3:10] = True
  stroke_HxWx3 = np.where(
      mask_HxW[..., None], np.float32([0.9, 0.1, 0.1]), source_HxWx3
  )
  return source_HxWx3, int(labels[0]), mask_HxW, stroke_HxWx3


def test_golden_layout():
  layout = models.TokenLayout(CODEBOOK, CLASSES, LATENT, class_conditional=True)
  assert (layout.vocab_size, layout.seq_len, layout.mask_id) == (75, 65, 74)


def test_import_writes_both_runs(runs):
  assert sorted(os.listdir(os.path.dirname(runs["maskgit"]))) == [
      "maskgit",
      "tokenizer",
  ]
  assert sorted(os.listdir(runs["tokenizer"])) == [
      "config.json",
      "tokenizer_params.msgpack",
  ]
  assert sorted(os.listdir(runs["maskgit"])) == [
      "config.json",
      "transformer_params.msgpack",
  ]
  config = artefacts.load_run_config(runs["maskgit"])
  assert config.num_classes == CLASSES
  assert config.tokenizer_workdir == os.path.abspath(runs["tokenizer"])
  assert config.imported_from == str(GOLDEN_TRANSFORMER)


def test_imported_runs_load_with_identical_params(runs):
  tokenizer, tok_params, tok_config = artefacts.load_tokenizer(
      runs["tokenizer"]
  )
  assert (
      tokenizer.filters,
      tokenizer.channel_multipliers,
      tokenizer.codebook_size,
  ) == (32, (1, 2), CODEBOOK)
  assert tok_config.data.image_size == SIDE
  _assert_trees_equal(tok_params, _raw_params(GOLDEN_TOKENIZER))
  transformer, params, layout, _ = artefacts.load_transformer(runs["maskgit"])
  assert (layout.vocab_size, layout.seq_len, layout.mask_id) == (75, 65, 74)
  assert (transformer.hidden_size, transformer.num_layers) == (64, 2)
  _assert_trees_equal(params, _raw_params(GOLDEN_TRANSFORMER))


@pytest.mark.parametrize("mode", ["edit", "fast_edit"])
@pytest.mark.parametrize("variant,knob", [("none", 0.0), ("self_fixed", 1e3)])
def test_editor_on_imported_runs(editors, scene, mode, variant, knob):
  editor = editors[mode]
  if mode == "fast_edit":
    assert (editor.settings.window, editor.settings.matmul_dtype) == (
        1,
        "bfloat16",
    )
    assert editor.settings.decode.num_steps == 7
    assert editor.sampler.model.matmul_dtype == "bfloat16"
    kernel = editor.params["MlmLayer_0"]["mlm_dense"]["kernel"]
    assert kernel.dtype == jax.numpy.bfloat16
  source_HxWx3, label, mask_HxW, stroke_HxWx3 = scene
  out = editor.edit(
      source_HxWx3[None],
      mask_HxW[None],
      jax.random.key(0),
      strokes_BxHxWx3=stroke_HxWx3[None],
      labels_B=np.array([label]),
      variant=variant,
      knob=knob,
  )
  edited_hxw = out["edited"][0]
  assert 0 < edited_hxw.sum() < LATENT * LATENT
  source_tokens_hxw = np.asarray(editor.tokenize(source_HxWx3[None]))[0]
  np.testing.assert_array_equal(
      out["tokens"][0][~edited_hxw], source_tokens_hxw[~edited_hxw]
  )
  region_HxW = np.kron(edited_hxw, np.ones((2, 2), bool))
  np.testing.assert_array_equal(
      out["images"][0][~region_HxW], source_HxWx3[~region_HxW]
  )
  if (
      variant == "self_fixed"
  ):  # Overwhelming confidence in the stroke: its codes win.
    stroke_tokens_hxw = np.asarray(editor.tokenize(stroke_HxWx3[None]))[0]
    np.testing.assert_array_equal(
        out["tokens"][0][edited_hxw], stroke_tokens_hxw[edited_hxw]
    )


def test_generation_on_imported_runs(editor):
  cfg = config_files.load(f"{ROOT}/configs/imagenet256.py:generate")
  settings = sampling.DecodeSettings.from_config(cfg.decode)
  assert (settings.num_steps, settings.start_iter) == (16, 0)
  sampler = sampling.Sampler(editor.sampler.model, editor.layout, settings)
  labels_B = np.array([0, 3, 9])
  tokens_Bxhxw = np.asarray(
      sampler.generate(editor.params, jax.random.key(1), 3, labels_B=labels_B)
  )
  assert tokens_Bxhxw.shape == (3, LATENT, LATENT)
  assert tokens_Bxhxw.min() >= 0 and tokens_Bxhxw.max() < CODEBOOK
  images_BxHxWx3 = np.asarray(editor.detokenize(tokens_Bxhxw))
  assert (
      images_BxHxWx3.shape == (3, SIDE, SIDE, 3)
      and np.isfinite(images_BxHxWx3).all()
  )


def test_import_with_data_writes_token_caches(tmp_path, editor):
  runs = _import(
      tmp_path / "out",
      "--data",
      "shapes",
      "--num_train",
      "6",
      "--num_test",
      "3",
      "--batch_size",
      "4",
  )  # 6 = 4 + a padded batch of 2.
  config = artefacts.load_run_config(runs["tokenizer"])
  caches = [
      artefacts.load_token_cache(runs["tokenizer"], split)
      for split in ("train", "test")
  ]
  assert [len(labels_N) for _, labels_N in caches] == [6, 3]
  images, labels = zip(
      *[
          data_lib.get_source(config.data, split).get(np.arange(len(labels_N)))
          for split, (_, labels_N) in zip(("train", "test"), caches)
      ]
  )
  np.testing.assert_array_equal(
      np.concatenate([tokens for tokens, _ in caches]),
      editor.tokenize(images_lib.to_float(np.concatenate(images))),
  )
  np.testing.assert_array_equal(
      np.concatenate([labels_N for _, labels_N in caches]),
      np.concatenate(labels),
  )


def _assert_nothing_written(parent, out):
  assert not out.exists()
  assert not [
      name for name in os.listdir(parent) if name.startswith(f".{out.name}")
  ]


def test_truncated_transformer_names_file_and_writes_nothing(tmp_path):
  bad = tmp_path / "files" / "maskgit_checkpoint"
  bad.parent.mkdir()
  bad.write_bytes(GOLDEN_TRANSFORMER.read_bytes()[:1000])
  with pytest.raises(ValueError, match=f"{bad}.*not a Flax msgpack checkpoint"):
    _import(tmp_path / "out", transformer=bad)
  _assert_nothing_written(tmp_path, tmp_path / "out")


def test_wrong_size_tokenizer_names_parameter_and_writes_nothing(tmp_path):
  params = _raw_params(GOLDEN_TOKENIZER)
  params["quantizer"]["codebook"] = params["quantizer"]["codebook"][:32]
  bad = tmp_path / "tokenizer_checkpoint"
  bad.write_bytes(serialization.msgpack_serialize({"params": params}))
  with pytest.raises(
      ValueError,
      match=(
          f"{bad} does not fit the model: parameter "
          r"quantizer/codebook has shape \(32, 16\) but the "
          r"model expects \(64, 16\)"
      ),
  ):
    _import(tmp_path / "out", tokenizer=bad)
  _assert_nothing_written(tmp_path, tmp_path / "out")


def test_golden_files_are_not_imagenet_models(tmp_path):
  with pytest.raises(
      ValueError, match=f"{GOLDEN_TOKENIZER} does not fit the model"
  ):
    _import(tmp_path / "out", sizes=("--image_size", "256"))
  _assert_nothing_written(tmp_path, tmp_path / "out")


def test_failure_while_writing_leaves_no_partial_runs(tmp_path, monkeypatch):
  def fail_on_transformer(workdir, name, params):
    if name == "transformer":
      raise OSError("disk full")
    return export_params(workdir, name, params)

  export_params = artefacts.export_params
  monkeypatch.setattr(artefacts, "export_params", fail_on_transformer)
  with pytest.raises(OSError, match="disk full"):
    _import(tmp_path / "out")
  _assert_nothing_written(tmp_path, tmp_path / "out")


def test_existing_out_and_bad_data_are_refused(tmp_path):
  (tmp_path / "taken").mkdir()
  (tmp_path / "taken" / "keep.txt").write_text("mine")
  with pytest.raises(FileExistsError, match="taken"):
    _import(tmp_path / "taken")
  assert os.listdir(tmp_path / "taken") == ["keep.txt"]
  with pytest.raises(ValueError, match="Unknown data source name 'nowhere'"):
    _import(tmp_path / "out", "--data", "nowhere")
  _assert_nothing_written(tmp_path, tmp_path / "out")


def _shapes(model):
  flat = traverse_util.flatten_dict(released.abstract_params(model), sep="/")
  return {path: list(spec.shape) for path, spec in flat.items()}


@pytest.mark.parametrize("image_size", [256, 512])
def test_imagenet_configs_describe_the_released_models(image_size):
  for mode in ("edit", "generate"):
    cfg = config_files.load(f"{ROOT}/configs/imagenet{image_size}.py:{mode}")
    assert (cfg.image_size, cfg.num_classes, tuple(cfg.pixel_range)) == (
        image_size,
        1000,
        (0, 1),
    )
    assert cfg.transformer_workdir == f"runs/imagenet{image_size}/maskgit"
  for trainer in ("reweight", "iterate"):
    cfg = config_files.load(f"{ROOT}/configs/imagenet{image_size}.py:{trainer}")
    assert (cfg.trainer, cfg.transformer_workdir) == (
        trainer,
        f"runs/imagenet{image_size}/maskgit",
    )
  architecture = released.released_config(image_size)
  sizes = released_runs.released_sizes(image_size)
  layout = released_runs.token_layout(sizes)
  assert (layout.vocab_size, layout.seq_len) == (
      architecture["vocab_size"],
      architecture["seq_len"],
  )
  # Shapes of the released files (test_released_import matches released_config's modules to them).
  files = json.loads(
      (ROOT / "tests" / "data" / "param_shapes.json").read_text()
  )
  assert (
      _shapes(models.build_transformer(sizes.model, layout))
      == files[f"maskgit_imagenet{image_size}_checkpoint"]
  )
  if image_size == 256:  # One tokenizer architecture serves both sizes.
    assert (
        _shapes(models.build_tokenizer(sizes.tokenizer))
        == files["tokenizer_imagenet256_checkpoint"]
    )
  else:
    assert (
        sizes.tokenizer.to_dict()
        == released_runs.released_sizes(256).tokenizer.to_dict()
    )


def test_edit_config_settings_and_knob_grids():
  cfg = config_files.load(f"{ROOT}/configs/imagenet512.py:edit")
  settings = edit.EditSettings.from_config(cfg)
  assert settings.decode == sampling.DecodeSettings(
      num_steps=12, start_iter=2, choice_temperature=4.5, schedule="cosine"
  )
  assert (settings.dilation, settings.composite, settings.kernel) == (
      1,
      "feather",
      "l2",
  )
  assert settings.feather_sigma_px == 4.0
  assert edit.EditSettings.from_config({"dilation": 0}) == edit.EditSettings(
      dilation=0
  )
  with pytest.raises(ValueError, match="Unknown mode 'train'"):
    config_files.load(f"{ROOT}/configs/imagenet256.py:train")


def _run_cli(argv):
  flag_values = flags.FlagValues()
  edit.define_flags(flag_values, argv)
  flag_values(argv)
  return edit.run(flag_values)


def test_edit_cli_takes_config_and_flags_override_it(runs, scene, tmp_path):
  source_HxWx3, label, mask_HxW, stroke_HxWx3 = scene
  paths = {}
  for name, image in (
      ("source", source_HxWx3),
      ("stroke", stroke_HxWx3),
      ("mask", np.repeat(mask_HxW[..., None], 3, -1).astype(np.float32)),
  ):
    paths[name] = images_lib.save_png(image, str(tmp_path / f"{name}.png"))
  argv = [
      "edit",
      f"--config={ROOT}/configs/imagenet256.py:edit",
      "--config.decode.num_steps=4",
      f"--transformer_workdir={runs['maskgit']}",
      f"--source={paths['source']}",
      f"--stroke={paths['stroke']}",
      f"--mask={paths['mask']}",
      "--variant=self_fixed",
      "--knob=2",
      f"--out={tmp_path / 'edited.png'}",
  ]
  # The config's label (207) and run folders are ImageNet's: flags must replace them.
  with pytest.raises(
      ValueError, match="Label 207 is not a class of this model: 0 to "
  ):
    _run_cli(argv + [f"--tokenizer_workdir={runs['tokenizer']}"])
  with pytest.raises(cli.USER_ERRORS, match="runs/imagenet256/tokenizer"):
    _run_cli(argv + [f"--label={label}"])
  # Key/value reuse from the command line: the far pixels stay the source's.
  written = _run_cli(
      argv
      + [
          f"--label={label}",
          f"--tokenizer_workdir={runs['tokenizer']}",
          "--full_pass_every=2",
      ]
  )
  edited_HxWx3 = images_lib.to_float(np.asarray(Image.open(written)))
  assert edited_HxWx3.shape == (SIDE, SIDE, 3)
  far_HxW = np.ones((SIDE, SIDE), bool)
  far_HxW[2:12, 0:14] = False  # The mask's tokens plus one token of dilation.
  np.testing.assert_allclose(
      edited_HxWx3[far_HxW], source_HxWx3[far_HxW], atol=1 / 255
  )


def test_edit_cli_needs_both_run_folders_or_neither(tmp_path):
  with pytest.raises(
      ValueError, match="both --tokenizer_workdir and --transformer_workdir"
  ):
    _run_cli(
        [
            "edit",
            f"--source={tmp_path}/s.png",
            f"--mask={tmp_path}/m.png",
            f"--tokenizer_workdir={tmp_path}",
        ]
    )
