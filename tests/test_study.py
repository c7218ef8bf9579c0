"""The study (maskgit_edit.study, scripts/run_edits.py) and renderer, on tiny runs."""

import dataclasses
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
from PIL import Image
import pytest

from maskgit_edit import artefacts
from maskgit_edit import batching
from maskgit_edit import data as data_lib
from maskgit_edit import intervals
from maskgit_edit import strokes
from maskgit_edit.decoding import guidance as guidance_lib
from maskgit_edit.study import grid as grid_lib
from maskgit_edit.study import outputs as outputs_lib
from maskgit_edit.study import pairing
from maskgit_edit.study import run as run_lib
from maskgit_edit.study import schema
from maskgit_edit.study import settings as settings_lib
from maskgit_edit.study import stroke_sets
from conftest import ROOT, load_script

pytestmark = pytest.mark.xdist_group("tiny_runs")

NUM_SOURCES, STROKES_PER_IMAGE = 4, 2
NUM_STROKES = NUM_SOURCES * STROKES_PER_IMAGE
# Two knobs per variant, display knobs included.
KNOBS = {
    "none": (0.0,),
    "sdedit": (0.5, 1.0),
    "context": (0.0, 0.5),
    "self_fixed": (0.0, 2.0),
    "self_learned": (1.0, 1000.0),
    "iterative": (0.0, 1.0),
    "zero_shot": (0.0, 0.5),
}
SWD_FOLDS = 2


run_edits = load_script("scripts/run_edits.py")
render = load_script("scripts/render_comparison_table.py")


def _write_manifest(out_dir, sources, metadata):
  records = strokes.make_strokes(
      sources, strokes_per_image=STROKES_PER_IMAGE, seed=0
  )
  return str(
      strokes.write_stroke_set(out_dir, sources, records, metadata=metadata)
  )


@pytest.fixture(scope="module")
def test_source(tiny_runs):
  config = artefacts.load_run_config(tiny_runs["tokenizer"])
  return config.data, data_lib.get_source(config.data, "test")


@pytest.fixture(scope="module")
def manifest(test_source, tmp_path_factory):
  data_config, source = test_source
  sources, _ = source.get(np.arange(NUM_SOURCES))
  return _write_manifest(
      tmp_path_factory.mktemp("strokes"),
      sources,
      {"data": data_config.to_dict(), "split": "test"},
  )


@pytest.fixture(scope="module")
def trained_extras(tiny_runs, tmp_path_factory):
  """Stand-ins for reweight / iterate runs: only the files the Editor reads."""
  root = tmp_path_factory.mktemp("extras")
  (root / "reweight").mkdir()
  (root / "iterate").mkdir()
  codebook = artefacts.load_run_config(
      tiny_runs["tokenizer"]
  ).tokenizer.codebook_size
  artefacts.export_params(
      str(root / "reweight"),
      "kernel",
      {"kernel": 3.0 * guidance_lib.identity_kernel(codebook)},
  )
  _, params, _, _ = artefacts.load_transformer(tiny_runs["maskgit"])
  artefacts.export_params(str(root / "iterate"), "transformer", params)
  return str(root / "reweight"), str(root / "iterate")


def _harness_argv(tiny_runs, manifest, out_dir, extra=()):
  return [
      "--manifest",
      manifest,
      "--tokenizer_workdir",
      tiny_runs["tokenizer"],
      "--transformer_workdir",
      tiny_runs["maskgit"],
      "--out_dir",
      str(out_dir),
      "--batch_size",
      "8",
      "--swd_descriptors",
      "16",
      "--swd_min_resolution",
      "8",
      "--swd_projections",
      "32",
      "--swd_folds",
      str(SWD_FOLDS),
      "--knobs",
      *[
          f"{v}={','.join(map(str, k))}"
          for v, k in KNOBS.items()
          # A variant's knobs ask for it, which needs its run.
          if f"--{guidance_lib.variant(v).needs}_workdir" in extra
          or not guidance_lib.variant(v).needs
      ],
      *extra,
  ]


@pytest.fixture(scope="module")
def harness(tiny_runs, tiny_judge, manifest, trained_extras, tmp_path_factory):
  out_dir = tmp_path_factory.mktemp("eval")
  reweight, iterate = trained_extras
  argv = _harness_argv(
      tiny_runs,
      manifest,
      out_dir,
      [
          "--reweight_workdir",
          reweight,
          "--iterate_workdir",
          iterate,
          "--judge_workdir",
          tiny_judge[0],
      ],
  )
  json_path = run_edits.main(argv)
  return argv, str(out_dir), json_path


@pytest.fixture(scope="module")
def rendered(harness, tmp_path_factory):
  root = tmp_path_factory.mktemp("render")
  paths = render.main(
      [
          "--results",
          harness[2],
          "--output_dir",
          str(root / "output"),
          "--grid",
          str(root / "imgs" / "comparison_grid.png"),
          "--plot",
          str(root / "imgs" / "plot.png"),
      ]
  )
  return root, paths


def _settings():
  """The harness's settings: KNOBS, then iterative's tuned baselines."""
  return [(v, k) for v, knobs in KNOBS.items() for k in knobs] + [
      (v + settings_lib.TUNED, k)
      for v in settings_lib.TUNED_BASELINES
      for k in KNOBS[v]
  ]


def _npz(out_dir, variant, knob):
  with np.load(outputs_lib.output_path(out_dir, variant, knob)) as f:
    return {name: f[name] for name in f.files}


# ---------------------------------------------------------------------------
# Harness.


def test_harness_writes_every_setting_and_the_csv(harness):
  _, out_dir, json_path = harness
  ids = [e["id"] for e in json.load(open(json_path))["strokes"]]
  for variant, knob in _settings():
    path = outputs_lib.output_path(out_dir, variant, knob)
    outputs = _npz(out_dir, variant, knob)
    assert outputs["images"].shape == (NUM_STROKES, 16, 16, 3)
    assert outputs["images"].dtype == np.uint8
    for stroke_id in ids:
      assert os.path.isfile(
          os.path.join(outputs_lib.png_dir(path), f"{stroke_id}.png")
      )
  with open(os.path.join(out_dir, schema.CSV_NAME)) as f:
    lines = f.read().splitlines()
  assert len(lines) == 1 + len(_settings())
  header = lines[0].split(",")
  for name in schema.METRICS:
    assert {f"{name}_mean", f"{name}_ci", f"{name}_n"} <= set(header)


def test_results_json_has_the_documented_schema(harness, test_source):
  _, out_dir, json_path = harness
  results = json.load(open(json_path))
  assert set(results) == {
      "schema_version",
      "manifest",
      "num_strokes",
      "image_size",
      "strokes",
      "seed",
      "batch_size",
      "models",
      "edit_settings",
      "swd",
      "psnr_cap",
      "skipped",
      "references",
      "results",
  }
  assert results["schema_version"] == schema.SCHEMA_VERSION
  assert results["num_strokes"] == NUM_STROKES
  assert results["image_size"] == 16
  assert results["skipped"] == {}
  assert set(results["swd"]) == {
      "num_descriptors",
      "min_resolution",
      "num_projections",
      "folds",
      "seed",
      "num_real",
      "real_split",
  }
  _, source = test_source
  indices = [s["image_index"] for s in results["strokes"]]
  np.testing.assert_array_equal(
      [s["label"] for s in results["strokes"]], source.get(np.array(indices))[1]
  )
  assert set(results["references"]) == {"source", "stroke"}
  for reference in results["references"].values():
    assert set(reference) == set(schema.REFERENCE_METRICS)
  assert results["references"]["stroke"]["l2_stroke"]["mean"] == 0.0
  assert [(r["variant"], r["knob"]) for r in results["results"]] == _settings()
  for r in results["results"]:
    assert set(r) == {
        "variant",
        "knob",
        "knob_name",
        "outputs",
        "pngs",
        "metrics",
        "paired_vs_none",
        "paired_vs_sdedit",
        "per_stroke",
        "swd_folds",
    }
    assert os.path.isfile(os.path.join(out_dir, r["outputs"]))
    assert os.path.isdir(os.path.join(out_dir, r["pngs"]))
    assert set(r["metrics"]) == set(schema.METRICS)
    for name, summary in r["metrics"].items():
      expected_n = SWD_FOLDS if name == "swd" else NUM_STROKES
      assert summary["n"] == expected_n, name
      assert np.isfinite(summary["mean"])
      if name == "judge_kid":
        assert set(summary) == {"mean", "ci", "std", "n"}
        assert summary["std"] > 0
      else:
        assert set(summary) == {"mean", "ci", "n"}
        assert summary["ci"] >= 0
    assert set(r["per_stroke"]) == set(schema.PER_STROKE_METRICS)
    assert all(len(v) == NUM_STROKES for v in r["per_stroke"].values())
    assert len(r["swd_folds"]) == SWD_FOLDS
    expected_paired = (
        set() if r["variant"] == "none" else set(schema.PER_STROKE_METRICS)
    )
    if r["variant"] == "none@tuned":  # The iterate stand-in's base params.
      assert r["paired_vs_none"]["l2"]["mean"] == 0.0
    assert set(r["paired_vs_none"]) == expected_paired
    for paired in r["paired_vs_none"].values():
      assert set(paired) == {"mean", "lo", "hi", "n"}
      assert paired["lo"] <= paired["mean"] <= paired["hi"]
    if r["variant"] in ("none", "sdedit", "none@tuned", "sdedit@tuned"):
      assert r["paired_vs_sdedit"] == {}
    else:
      matched = r["paired_vs_sdedit"]
      assert matched["knobs"] == [0.5, 1.0] and matched["gap"] == 0.5
      assert sum(matched["weights"]) == pytest.approx(1.0)
      assert set(matched["metrics"]) == set(schema.PER_STROKE_METRICS)
      assert 0.0 <= matched["in_range_share"] <= 1.0
  schema.load_results(json_path)


def test_knob_zero_reproduces_none_with_paired_seeds(harness):
  _, out_dir, json_path = harness
  baseline = _npz(out_dir, "none", 0.0)
  # The iterate stand-in holds the base params, so its knob 0 is "none" too.
  for variant in ("context", "self_fixed", "iterative", "zero_shot"):
    np.testing.assert_array_equal(
        _npz(out_dir, variant, 0.0)["tokens"], baseline["tokens"]
    )
  assert not np.array_equal(
      _npz(out_dir, "self_learned", 1000.0)["tokens"], baseline["tokens"]
  )
  results = json.load(open(json_path))["results"]
  context0 = next(
      r for r in results if r["variant"] == "context" and r["knob"] == 0.0
  )
  assert context0["paired_vs_none"]["l2_stroke"]["mean"] == 0.0


def test_resume_recomputes_only_missing_settings(harness, capsys):
  argv, out_dir, json_path = harness
  before = json.load(open(json_path))
  deleted = outputs_lib.output_path(out_dir, "context", 0.5)
  kept = outputs_lib.output_path(out_dir, "zero_shot", 0.5)
  old_outputs = _npz(out_dir, "context", 0.5)
  kept_mtime = os.stat(kept).st_mtime_ns
  os.remove(deleted)
  capsys.readouterr()
  run_edits.main(argv)
  log = capsys.readouterr().out
  assert (
      f"{len(_settings()) - 1} of {len(_settings())} settings already "
      "done; running 1 on 1 device(s)." in log
  )
  edit_progress = [
      line
      for line in log.splitlines()
      if line.startswith("[") and "scored" not in line
  ]
  assert len(edit_progress) == 1 and "context rho=0.5" in edit_progress[0]
  assert os.stat(kept).st_mtime_ns == kept_mtime
  for name, array in _npz(out_dir, "context", 0.5).items():
    np.testing.assert_array_equal(array, old_outputs[name])
  assert json.load(open(json_path))["results"] == before["results"]


def test_outputs_of_another_run_are_refused(harness):
  argv, out_dir, _ = harness
  with pytest.raises(ValueError, match="outputs of another run"):
    run_edits.main(
        argv + ["--seed", "1", "--variants", "none", "--knobs", "none=0"]
    )


def test_a_run_killed_three_times_resumes_to_the_same_files(harness, tmp_path):
  """SIGKILL at random points (each after a random number of settings were
  saved, mid-way through the next or through scoring), then a full resume: results.json and
  every PNG equal the uninterrupted run's byte for byte, every npz array
  equals (the zip's timestamps differ)."""
  argv, reference_dir, _ = harness
  out_dir = tmp_path / "killed"
  argv = [a if a != reference_dir else str(out_dir) for a in argv]
  command = [sys.executable, os.path.join(ROOT, "scripts/run_edits.py"), *argv]
  rng = np.random.default_rng(0)
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  for _ in range(3):
    saved = len(list(out_dir.glob("edits/*/*.npz")))
    target = min(saved + int(rng.integers(1, 4)), len(_settings()) - 1)
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while (
        len(list(out_dir.glob("edits/*/*.npz"))) < target
        and process.poll() is None
        and time.monotonic() < deadline
    ):
      time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 0.5))
    process.send_signal(signal.SIGKILL)
    process.wait()
  # The kills fell mid-way: some settings saved, the results not written.
  assert list(out_dir.glob("edits/*/*.npz"))
  assert not (out_dir / schema.RESULTS_NAME).exists()
  subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=True)
  reference = pathlib.Path(reference_dir)
  assert (out_dir / schema.RESULTS_NAME).read_text() == (
      (reference / schema.RESULTS_NAME)
      .read_text()
      .replace(str(reference), str(out_dir))
  )
  pngs = sorted(
      p.relative_to(reference) for p in reference.glob("edits/**/*.png")
  )
  assert pngs == sorted(
      p.relative_to(out_dir) for p in out_dir.glob("edits/**/*.png")
  )
  for png in pngs:
    assert (out_dir / png).read_bytes() == (reference / png).read_bytes(), png
  for variant, knob in _settings():
    killed = _npz(str(out_dir), variant, knob)
    for name, array in _npz(reference_dir, variant, knob).items():
      np.testing.assert_array_equal(killed[name], array)


def test_edits_of_other_strokes_or_models_are_refused(harness):
  argv, out_dir, _ = harness
  run_json = os.path.join(out_dir, outputs_lib.RUN_NAME)
  recorded = json.load(open(run_json))
  assert recorded["models"]["tokenizer_workdir"].startswith("/")
  for key, value in (("manifest", "/elsewhere/manifest.json"), ("models", {})):
    with open(run_json, "w") as f:
      json.dump({**recorded, key: value}, f)
    with pytest.raises(ValueError, match=f"another run: its {key} is .*this"):
      run_edits.main(argv)
  with open(run_json, "w") as f:
    json.dump(recorded, f)
  # Other products are other edits.
  with pytest.raises(
      ValueError,
      match="its edit_settings is .*'float32'.*this run's .*'bfloat16'",
  ):
    run_edits.main([*argv, "--matmul_dtype", "bfloat16"])
  # A record written before a setting existed stands for its default.
  older = json.loads(json.dumps(recorded))
  del older["edit_settings"]["matmul_dtype"]
  del older["edit_settings"]["decode"]["full_pass_every"]
  with open(run_json, "w") as f:
    json.dump(older, f)
  outputs_lib.claim_out_dir(out_dir, recorded, run_lib.IDENTITY_DEFAULTS)
  with pytest.raises(ValueError, match="its edit_settings is"):
    outputs_lib.claim_out_dir(out_dir, recorded)
  bfloat16 = json.loads(json.dumps(recorded))
  bfloat16["edit_settings"]["matmul_dtype"] = "bfloat16"
  with pytest.raises(ValueError, match="its edit_settings is"):
    outputs_lib.claim_out_dir(out_dir, bfloat16, run_lib.IDENTITY_DEFAULTS)
  with open(run_json, "w") as f:
    json.dump(recorded, f)


# ---------------------------------------------------------------------------
# Renderer.


def test_renderer_writes_every_file(rendered, harness):
  root, paths = rendered
  for key in ("grid", "plot"):
    with Image.open(paths[key]) as image:
      assert image.width > 300 and image.height > 200
  strips = sorted(os.listdir(root / "output"))
  assert len([s for s in strips if s.startswith("strip_inversion")]) == 3
  assert len([s for s in strips if s.startswith("strip_counterfactual")]) == 3
  text = open(paths["markdown"]).read()
  header = (
      "| "
      + " | ".join(c.title for c in settings_lib.comparison_columns())
      + " |"
  )
  assert header == (
      "| Source | Stroke | No guide | Token SDEdit | Context | "
      "Self: fixed | Self: learned | Self: learned, full confidence | "
      "Iterative tuning | Zero-shot |"
  )
  lines = text.splitlines()
  start = lines.index(header)
  example_rows = lines[start + 2 : start + 8]
  assert sum("inversion" in r for r in example_rows) == 3
  assert sum("counterfactual" in r for r in example_rows) == 3
  assert all(
      r.count("![") == len(settings_lib.comparison_columns())
      for r in example_rows
  )
  md_dir = os.path.dirname(paths["markdown"])
  links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
  assert len(links) == 6 * len(settings_lib.comparison_columns()) + 2
  for link in links:
    assert not os.path.isabs(link)
    assert os.path.isfile(os.path.join(md_dir, link)), link
  metric_header = next(l for l in lines if l.startswith("| Variant | Knob"))
  for title in (
      "Faithfulness L2, whole",
      "Faithfulness L2, in mask",
      "Preservation PSNR (dB)",
      "SWD (x1e3)",
      "Judge realism (k-NN)",
      "Judge class kept",
  ):
    assert title in metric_header
  metric_rows = lines[lines.index(metric_header) + 2 :]
  metric_rows = metric_rows[
      : next(i for i, l in enumerate(metric_rows) if not l.startswith("|"))
  ]
  assert len(metric_rows) == 2 + len(_settings())
  assert "| self_fixed | lambda=2 |" in text and " ± " in text


def test_renderer_marks_skipped_variants(harness, tmp_path):
  _, out_dir, json_path = harness
  results = json.load(open(json_path))
  results["results"] = [
      r for r in results["results"] if r["variant"] != "iterative"
  ]
  results["skipped"] = {"iterative": "needs --iterate_workdir (not given)"}
  # Same folder as the original, so the relative output paths resolve.
  partial = os.path.join(out_dir, "results_partial.json")
  with open(partial, "w") as f:
    json.dump(results, f)
  paths = render.main(
      [
          "--results",
          partial,
          "--output_dir",
          str(tmp_path / "out"),
          "--grid",
          str(tmp_path / "g.png"),
          "--plot",
          str(tmp_path / "p.png"),
          "--examples_per_mode",
          "1",
      ]
  )
  assert (
      "Skipped: iterative (needs --iterate_workdir"
      in open(paths["markdown"]).read()
  )
  cell = np.asarray(
      Image.open(tmp_path / "out" / "cells" / "0000_0" / "iterative_tuning.png")
  )
  assert np.median(cell) == grid_lib._PLACEHOLDER_GREY  # pylint: disable=protected-access


def test_renderer_rejects_a_foreign_results_file(tmp_path):
  path = tmp_path / "results.json"
  path.write_text(json.dumps({"schema_version": 1, "results": []}))
  with pytest.raises(ValueError, match="lacks keys"):
    render.main(["--results", str(path)])


# ---------------------------------------------------------------------------
# Bad inputs (surfacing from strokes.read_manifest) and the pieces.


def _copy_manifest(manifest, tmp_path):
  return shutil.copytree(os.path.dirname(manifest), tmp_path / "strokes")


def test_manifest_pointing_to_a_missing_file_is_reported(
    tiny_runs, manifest, tmp_path
):
  folder = _copy_manifest(manifest, tmp_path)
  os.remove(folder / "stroke_0001_1.png")
  with pytest.raises(FileNotFoundError, match="stroke_0001_1.png"):
    run_edits.main(
        _harness_argv(
            tiny_runs, str(folder / "manifest.json"), tmp_path / "out"
        )
    )


def test_images_of_mixed_sizes_are_reported(tiny_runs, manifest, tmp_path):
  folder = _copy_manifest(manifest, tmp_path)
  Image.new("RGB", (32, 32)).save(folder / "source_0002.png")
  with pytest.raises(ValueError, match="mixed sizes"):
    run_edits.main(
        _harness_argv(
            tiny_runs, str(folder / "manifest.json"), tmp_path / "out"
        )
    )


def test_images_of_the_wrong_size_for_the_tokenizer_are_reported(
    tiny_runs, tmp_path
):
  sources = np.zeros((2, 32, 32, 3), np.uint8)
  sources[:, 8:24, 8:24] = (200, 30, 30)
  path = _write_manifest(tmp_path / "strokes", sources, None)
  with pytest.raises(ValueError, match="32 px .* 16 px"):
    run_edits.main(_harness_argv(tiny_runs, path, tmp_path / "out"))


def test_labels_come_from_the_recorded_data_source(manifest, test_source):
  stroke_set = stroke_sets.load_stroke_set(manifest)
  _, source = test_source
  np.testing.assert_array_equal(
      stroke_sets.stroke_labels(stroke_set),
      source.get(stroke_set.image_indices_N)[1],
  )
  with pytest.warns(UserWarning, match="label 0"):
    labels = stroke_sets.stroke_labels(
        dataclasses.replace(stroke_set, data_config=None)
    )
  np.testing.assert_array_equal(labels, np.zeros(NUM_STROKES))
  shifted = dataclasses.replace(
      stroke_set, image_indices_N=stroke_set.image_indices_N + 1
  )
  with pytest.raises(ValueError, match="labels are unknown"):
    stroke_sets.stroke_labels(shifted)


def test_a_variant_without_its_run_is_an_error_naming_the_run():
  study = {v.name: v.study_knobs for v in guidance_lib.REGISTRY.values()}
  kept = settings_lib.select_variants(
      {k: v for k, v in study.items() if k != "self_learned"}, {"iterate"}
  )
  assert set(kept) == set(guidance_lib.names()) - {"self_learned"} | {
      "none@tuned",
      "sdedit@tuned",
  }
  with pytest.raises(ValueError, match="reweight trainer"):
    settings_lib.select_variants(study, {"iterate"})
  assert all(len(v) >= 6 for k, v in kept.items() if "none" not in k)
  # The curve every setting is matched on: steps of 0.05.
  assert np.diff(kept["sdedit"]).max() <= 0.05 + 1e-9
  with pytest.raises(ValueError, match="fraction"):
    settings_lib.select_variants({"context": (0.0, 2.0)}, set())
  kept = settings_lib.select_variants({"sdedit": (0.5,)}, set())
  assert set(kept) == {"sdedit"}  # No tuned baselines without iterative.


def test_knob_flags_are_parsed_and_checked():
  assert run_edits.parse_knobs(["context=0,.5", "self_fixed=2"]) == {
      "context": (0.0, 0.5),
      "self_fixed": (2.0,),
  }
  for bad in ("contex=0.5", "context", "context=a"):
    with pytest.raises(ValueError, match="--knobs"):
      run_edits.parse_knobs([bad])


def test_summaries_skip_non_finite_values():
  summary = schema.summarize([1.0, 2.0, np.nan, 4.0])
  mean, ci = intervals.mean_ci([1.0, 2.0, 4.0])
  assert summary == {"mean": mean, "ci": ci, "n": 3}
  assert schema.summarize([3.0, np.inf]) == {
      "mean": 3.0,
      "ci": None,
      "n": 1,
  }
  paired = schema.summarize_paired(
      [2.0, 5.0, np.nan], [1.0, 1.0, 1.0], [0, 1, 2]
  )
  assert paired["mean"] == 2.5 and paired["n"] == 2
  assert 1.0 <= paired["lo"] <= paired["hi"] <= 4.0


def _result(variant, knob, l2_stroke, realism):
  """A results entry with per-stroke values (8 strokes, 2 per image)."""
  per_stroke = {name: [1.0] * 8 for name in schema.PER_STROKE_METRICS}
  per_stroke.update(
      l2_stroke=np.broadcast_to(l2_stroke, 8).tolist(),
      realism=np.broadcast_to(realism, 8).tolist(),
  )
  return {"variant": variant, "knob": knob, "per_stroke": per_stroke}


def test_sdedit_is_matched_at_the_first_crossing_in_knob_order():
  # Faithfulness 1, 3, 2, 4 along the strengths: not monotone. Sorting by
  # faithfulness would bracket 2.5 with strengths 1/3 and 2/3.
  curve = [
      _result("sdedit", k, f, r)
      for k, f, r in ((0.0, 1.0, 10.0), (1 / 3, 3.0, 20.0), (2 / 3, 2.0, 0.0))
  ] + [_result("sdedit", 1.0, 4.0, 40.0)]
  clusters = np.arange(8) // 2
  matched = pairing.matched_sdedit(
      _result("self_fixed", 2.0, 2.5, 25.0), curve[::-1], clusters
  )
  assert matched["knobs"] == [0.0, 1 / 3] and matched["in_range"]
  assert matched["weights"] == pytest.approx([0.25, 0.75])
  assert matched["gap"] == pytest.approx(1 / 3)
  realism = matched["metrics"]["realism"]
  assert realism["mean"] == pytest.approx(25.0 - 17.5)
  assert realism["lo"] == pytest.approx(7.5) == realism["hi"]
  assert matched["metrics"]["l2_stroke"]["mean"] == pytest.approx(0.0)
  outside = pairing.matched_sdedit(
      _result("self_fixed", 2.0, 9.0, 25.0), curve, clusters
  )
  assert not outside["in_range"] and outside["in_range_share"] == 0.0
  assert outside["metrics"]["realism"]["mean"] is None


def test_sdedit_matching_is_redone_in_every_bootstrap_replicate():
  """sdedit's faithfulness grows with strength at a rate that differs by
  image, and its realism is 5 x faithfulness on every stroke. A variant on
  that line (faithfulness 0.6, realism 3) differs from the curve by 0 in
  every replicate when each replicate is matched anew; with the strength
  matched once on the whole sample, the difference would swing with which
  images a replicate draws."""
  slope_N = np.repeat([1.0, 2.0, 3.0, 1.5], 2)  # Per image (2 strokes).
  curve = [
      _result("sdedit", k, k * slope_N, 5.0 * k * slope_N)
      for k in (0.0, 0.5, 1.0)
  ]
  realism = pairing.matched_sdedit(
      _result("context", 0.5, 0.6, 3.0), curve, np.arange(8) // 2
  )["metrics"]["realism"]
  assert realism["mean"] == pytest.approx(0.0, abs=1e-9)
  assert realism["lo"] == pytest.approx(0.0, abs=1e-9)
  assert realism["hi"] == pytest.approx(0.0, abs=1e-9)


def test_tuned_baselines_pair_with_their_own_transformer():
  assert settings_lib.baselines_of("self_fixed") == ("none", "sdedit")
  assert settings_lib.baselines_of("iterative") == (
      "none@tuned",
      "sdedit@tuned",
  )
  assert settings_lib.baselines_of("sdedit@tuned") == (
      "none@tuned",
      "sdedit@tuned",
  )
  # The tuned transformer's own effect: its unguided decode against the base.
  assert settings_lib.baselines_of("none@tuned") == ("none", "")
  kept = settings_lib.select_variants(
      {"none": (0.0,), "sdedit": (0.5, 1.0), "iterative": (0.0,)},
      {"iterate"},
  )
  assert kept["sdedit@tuned"] == (0.5, 1.0) and kept["none@tuned"] == (0.0,)


def test_batches_are_padded_to_one_shape():
  batches = batching.padded_batches(5, 2)
  np.testing.assert_array_equal(np.stack(batches), [[0, 1], [2, 3], [4, 4]])
  shapes = []

  def fn(b, x_B, y_B):
    shapes.append(x_B.shape)
    return 10 * b + x_B + y_B

  out = batching.map_in_batches(
      fn, (np.arange(5), np.ones(5, int)), 2, indexed=True
  )
  np.testing.assert_array_equal(out, [1, 2, 13, 14, 25])
  assert shapes == [(2,)] * 3


def test_runs_pair_stroke_by_stroke_and_refuse_unpaired_runs(tmp_path):
  def run(l2_by_setting, seed=0, num_steps=12, start_iter=2):
    strokes = [
        {"id": str(i), "mode": "m", "image_index": i // 2, "label": 0}
        for i in range(8)
    ]
    return {
        "manifest": "m.json",
        "seed": seed,
        "batch_size": 4,
        "num_strokes": 8,
        "strokes": strokes,
        "edit_settings": {
            "window": None,
            "decode": {"num_steps": num_steps, "start_iter": start_iter},
        },
        "results": [
            {
                "variant": v,
                "knob": k,
                "knob_name": "lambda",
                "per_stroke": {
                    name: list(l2) for name in schema.PER_STROKE_METRICS
                },
            }
            for (v, k), l2 in l2_by_setting.items()
        ],
    }

  base = np.arange(8.0)
  baseline = run({("none", 0.0): base, ("self_fixed", 2.0): base})
  windowed = run({("self_fixed", 2.0): base + 1.0, ("sdedit", 0.5): base})
  (row,) = pairing.paired_between_runs(windowed, baseline)
  assert (row["variant"], row["knob"]) == ("self_fixed", 2.0)
  paired = row["metrics"]["l2_stroke"]
  assert paired["mean"] == pytest.approx(1.0) and paired["n"] == 8
  assert pairing.format_paired(paired).startswith("**+1")
  with pytest.raises(ValueError, match="seed"):
    pairing.paired_between_runs(run({}, seed=1), baseline)

  # The script's document: each run's decode and its paired differences.
  fast = run({("self_fixed", 2.0): base + 1.0}, num_steps=4, start_iter=1)
  fast["edit_settings"]["matmul_dtype"] = "bfloat16"
  paths = []
  for name, results in (("baseline", baseline), ("fast", fast)):
    paths.append(str(tmp_path / f"{name}.json"))
    with open(paths[-1], "w") as f:
      json.dump(results, f)
  out = str(tmp_path / "compare.md")
  load_script("scripts/compare_runs.py").main(
      ["--baseline", paths[0], "--runs", paths[1], "--out", out]
  )
  with open(out) as f:
    doc = f.read()
  assert "Written by `python scripts/compare_runs.py --baseline" in doc
  assert "Decode: 3 steps (from step 1 of 4)." in doc
  assert "Dense products: bfloat16 operands." in doc
  assert "| self_fixed | lambda=2 | **+1" in doc
