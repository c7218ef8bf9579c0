"""Sample quality under the judge, with the judge's validation rows
(`scripts/sample_quality.py`).

Every row is a set of `num_images` images compared with the same real
train images: real test images (the floor), their tokenizer
reconstructions, the unedited stroke images of an auto-stroke set (as
painted, and through the tokenizer, as every edit is), and class-conditional
samples (classes in turn) of each transformer. Per row: judge-FID,
judge-KID (mean ± std over subsets), the mean k-NN realism score and the
mean map entropy (if the judge has a dense head) with their 95% intervals,
and the judge's class accuracy. A judge fit to rate edits must order real
test < reconstructions < reconstructed stroke images < weak samples with
95% intervals of each step's difference (`VALIDATION`,
`judging.set_difference`) apart from 0. Writes quality.json, quality.md
and samples.png (one class per row: two real test images, their
reconstructions, then samples) to the output folder.
"""

import json
import os
import time

import jax
import numpy as np

from maskgit_edit import artefacts
from maskgit_edit import data as data_lib
from maskgit_edit import files
from maskgit_edit import images as images_lib
from maskgit_edit import judging
from maskgit_edit import tokenizing
from maskgit_edit.decoding import sampling
from maskgit_edit.study import stroke_sets

# Real train images behind FID / KID, and behind the realism score's k-NN
# balls (R^2 distances).
NUM_REFERENCE = 5000
NUM_REALISM_REFERENCE = 2000
SAMPLE_BATCH = 100


REAL = "real test images (floor)"
RECONSTRUCTED = "tokenizer reconstructions"
STROKES = "stroke images (unedited)"
STROKES_RECONSTRUCTED = "stroke images, reconstructed"
WEAK = "samples, weak model"
SAMPLES = "samples"
# The judge's validation: (better row, worse row, paired). Edits pass
# through the tokenizer, so the stroke images step up from the
# reconstructions once reconstructed themselves; unedited, from the real
# images. Reconstructions pair with the real images they reconstruct.
VALIDATION = (
    (REAL, RECONSTRUCTED, True),
    (RECONSTRUCTED, STROKES_RECONSTRUCTED, False),
    (STROKES_RECONSTRUCTED, WEAK, False),
    (REAL, STROKES, False),
)

# Decode settings of the transformer run that flags may override.
DECODE_OVERRIDES = ("choice_temperature", "num_steps", "class_guidance")


def generate(
    tokenizer: tokenizing.Tokenizer,
    transformer_workdir,
    num: int,
    seed: int,
    overrides: dict,
):
  """(images float [num, H, W, 3] in [0, 1], requested labels [num])."""
  model, params, layout, config = artefacts.load_transformer(
      transformer_workdir
  )
  settings = sampling.DecodeSettings.from_config(
      {**config.sample.to_dict(), **overrides}
  )
  sampler = sampling.Sampler(model, layout, settings)
  batch = min(SAMPLE_BATCH, num)
  # Whole batches only (one compiled program); the surplus is dropped.
  labels_N = np.arange(-(-num // batch) * batch) % max(layout.num_classes, 1)
  images = []
  for start in range(0, num, batch):
    tokens = sampler.generate(
        params,
        jax.random.fold_in(jax.random.key(seed), start),
        batch,
        labels_B=labels_N[start : start + batch],
    )
    images.append(tokenizer.detokenize_all(tokens))
    print(f"  sampled {min(start + batch, num)}/{num}", flush=True)
  return (
      np.concatenate(images)[:num],
      labels_N[:num],
      layout.class_conditional,
  )


def image_sets(
    data_config,
    num: int,
    *,
    tokenizer_workdir: str,
    transformer_workdir: str | None,
    weak_transformer_workdir: str | None,
    strokes: str | None,
    seed: int,
    decode_overrides: dict,
):
  """[(row name, float images [N, H, W, 3], labels [N] or None)] to judge."""
  tokenizer = tokenizing.Tokenizer.from_workdir(tokenizer_workdir, SAMPLE_BATCH)
  test_images, test_labels = data_lib.get_source(data_config, "test").get(
      np.arange(num)
  )
  test_images = images_lib.to_float(test_images)
  sets = [
      (REAL, test_images, test_labels),
      (RECONSTRUCTED, tokenizer.reconstruct_all(test_images), test_labels),
  ]
  if strokes:
    stroke_set = stroke_sets.load_stroke_set(strokes)
    if len(stroke_set) < num:
      raise ValueError(
          f"{strokes} has {len(stroke_set)} strokes; " f"--num_images is {num}."
      )
    stroke_images = stroke_set.strokes_NxHxWx3[:num]
    stroke_labels = stroke_sets.stroke_labels(stroke_set)[:num]
    # Edits pass through the tokenizer: compare them at its level.
    sets += [
        (STROKES, stroke_images, stroke_labels),
        (
            STROKES_RECONSTRUCTED,
            tokenizer.reconstruct_all(stroke_images),
            stroke_labels,
        ),
    ]
  for name, workdir in (
      (WEAK, weak_transformer_workdir),
      (SAMPLES, transformer_workdir),
  ):
    if workdir:
      print(f"Sampling {num} images from {workdir}", flush=True)
      images, labels, conditional = generate(
          tokenizer, workdir, num, seed, decode_overrides
      )
      sets.append((name, images, labels if conditional else None))
  return sets


def save_sample_grid(
    sets: dict, path: str, per_row: int = 8, num_real: int = 2
):
  """Samples, one class per row after `num_real` real test images of the
  class and their reconstructions (4 rows of samples when unconditional).

  Args:
    sets: row name -> (float images [N, H, W, 3], labels [N] or None).
  """
  samples_NxHxWx3, sample_labels_N = sets[SAMPLES]
  if sample_labels_N is None:
    rows = samples_NxHxWx3[: 4 * per_row]
    columns = per_row
  else:
    real, labels = sets[REAL]
    reconstructions, _ = sets[RECONSTRUCTED]
    blank = np.zeros((1, *samples_NxHxWx3.shape[1:]), np.float32)

    def first(images, of_class, num):
      picked = images[of_class][:num]
      return np.concatenate([picked, np.repeat(blank, num - len(picked), 0)])

    rows = np.concatenate(
        [
            part
            for c in np.unique(sample_labels_N)
            for part in (
                first(real, labels == c, num_real),
                first(reconstructions, labels == c, num_real),
                first(samples_NxHxWx3, sample_labels_N == c, per_row),
            )
        ]
    )
    columns = 2 * num_real + per_row
  os.makedirs(os.path.dirname(path), exist_ok=True)
  images_lib.save_png(
      images_lib.grid(rows, columns),
      path,
      scale=max(1, 128 // samples_NxHxWx3.shape[1]),
  )


def markdown(report: dict) -> str:
  lines = [
      f"Judge test accuracy {report['judge_test_accuracy']:.1%}; "
      f"{report['num_images']} images per row, against "
      f"{report['num_reference']} real train images.",
      "",
      "| images | judge-FID | judge-KID x1e3 (± std over subsets) "
      "| k-NN realism "
      "(higher: more real) | map entropy (lower: more real) "
      "| judge class accuracy |",
      "|---|---|---|---|---|---|",
  ]
  for row in report["rows"]:
    accuracy = (
        "–" if row["class_accuracy"] is None else f"{row['class_accuracy']:.1%}"
    )
    entropy = (
        "–"
        if "map_entropy" not in row
        else f"{row['map_entropy']:.3f} ± {row['map_entropy_ci']:.3f}"
    )
    lines.append(
        f"| {row['name']} | {row['fid']:.2f} | {1e3 * row['kid']:.2f} ± "
        f"{1e3 * row['kid_std']:.2f} | {row['realism']:.3f} ± "
        f"{row['realism_ci']:.3f} | {entropy} | {accuracy} |"
    )
  if report["validation"]:
    lines += [
        "",
        "The judge's validation: each step's difference, worse row minus "
        "better row, with its 95% bootstrap interval (FID should rise, "
        "realism fall; bold: the interval excludes 0 in that direction).",
        "",
        "| step | judge-FID difference | realism difference |",
        "|---|---|---|",
    ]
    for step in report["validation"]:
      cells = []
      for name, sign in (("fid", 1), ("realism", -1)):
        text = (
            f"{step[name]:+.3f} [{step[name + '_low']:+.3f}, "
            f"{step[name + '_high']:+.3f}]"
        )
        apart = min(sign * step[name + "_low"], sign * step[name + "_high"])
        cells.append(f"**{text}**" if apart > 0 else text)
      lines.append(
          f"| {step['better']} -> {step['worse']} | {' | '.join(cells)} |"
      )
  overridden = {
      k: v for k, v in report["decode_overrides"].items() if v is not None
  }
  if overridden:
    lines.append(
        "\nSamples decoded with "
        + ", ".join(f"{k} = {v:g}" for k, v in overridden.items())
        + "."
    )
  for key, text in (
      ("accuracy_ratio", "sample class accuracy / real test accuracy"),
      ("fid_ratio", "sample judge-FID / reconstruction judge-FID"),
  ):
    if key in report:
      lines.append(f"\n{text}: {report[key]:.2f}")
  return "\n".join(lines) + "\n"


def measure(
    judge_workdir: str,
    tokenizer_workdir: str,
    out_dir: str,
    *,
    transformer_workdir: str | None = None,
    weak_transformer_workdir: str | None = None,
    strokes: str | None = None,
    num_images: int = 1000,
    seed: int = 0,
    decode_overrides: dict | None = None,
) -> dict:
  """Judges every row (see the module doc); writes quality.json, quality.md
  and samples.png to `out_dir`; returns the report."""
  start = time.time()
  decode_overrides = decode_overrides or {}
  os.makedirs(out_dir, exist_ok=True)
  tokenizer_config = artefacts.load_run_config(tokenizer_workdir)
  data_config = tokenizer_config.data
  judge = judging.Judge.from_workdir(judge_workdir, data_config)
  sets = image_sets(
      data_config,
      num_images,
      tokenizer_workdir=tokenizer_workdir,
      transformer_workdir=transformer_workdir,
      weak_transformer_workdir=weak_transformer_workdir,
      strokes=strokes,
      seed=seed,
      decode_overrides=decode_overrides,
  )
  train_source = data_lib.get_source(data_config, "train")
  reference_images, _ = train_source.get(
      np.arange(min(NUM_REFERENCE, len(train_source)))
  )
  reference_RxD = judge.features(reference_images)
  rows, features = [], {}
  for name, images, labels in sets:
    features[name] = judge.features(images)
    row = {
        "name": name,
        **judging.set_quality(
            features[name],
            reference_RxD,
            realism_reference_RxD=reference_RxD[:NUM_REALISM_REFERENCE],
            map_entropy_N=judge.map_entropy(images) if judge.has_maps else None,
            rng=seed,
        ),
    }
    row["class_accuracy"] = (
        None
        if labels is None
        else float(np.mean(judge.labels(images) == labels))
    )
    rows.append(row)
    print(f"{name}: judge-FID {row['fid']:.2f}", flush=True)
  by_name = {row["name"]: row for row in rows}
  validation = [
      {
          "better": better,
          "worse": worse,
          **judging.set_difference(
              features[better],
              features[worse],
              by_name[better]["realism_scores"],
              by_name[worse]["realism_scores"],
              reference_RxD,
              paired=paired,
              rng=seed,
          ),
      }
      for better, worse, paired in VALIDATION
      if better in features and worse in features
  ]
  report = {
      "num_images": num_images,
      "num_reference": len(reference_RxD),
      "judge_test_accuracy": artefacts.load_final_metrics(judge_workdir)[
          "test_accuracy"
      ],
      "decode_overrides": {
          k: decode_overrides.get(k) for k in DECODE_OVERRIDES
      },
      "rows": rows,
      "validation": validation,
  }
  if SAMPLES in by_name:
    if by_name[SAMPLES]["class_accuracy"] is not None:
      report["accuracy_ratio"] = (
          by_name[SAMPLES]["class_accuracy"] / by_name[REAL]["class_accuracy"]
      )
    report["fid_ratio"] = (
        by_name[SAMPLES]["fid"] / by_name[RECONSTRUCTED]["fid"]
    )
  if SAMPLES in by_name:
    save_sample_grid(
        {name: (images, labels) for name, images, labels in sets},
        os.path.join(out_dir, "samples.png"),
    )
  table = markdown(report)
  with open(os.path.join(out_dir, "quality.md"), "w") as f:
    f.write(table)
  # quality.json marks the stage done (scripts/main.py): last, atomically.
  with (
      files.atomic_path(os.path.join(out_dir, "quality.json")) as tmp,
      open(tmp, "w") as f,
  ):
    json.dump(report, f, indent=1)
  print(table + f"({time.time() - start:.0f}s)", flush=True)
  return report
