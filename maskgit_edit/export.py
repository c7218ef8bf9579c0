"""Copies finished runs into a committed folder of reference models
(`scripts/export_pretrained.py`).

For each trainer's run (tokenizer, maskgit, judge, reweight, iterate):
config.json (links between the runs rewritten as "../<run>", the class
count recorded so that no token cache is needed), final_metrics.json, and
the parameters in float16 (half the bytes; loading casts them back to
float32). Fashion-MNIST runs also get the first `NUM_HELD_OUT` test images
(`data/`, the IDX files the source reads; the runs' `data.fashion_mnist_dir`
points there), so that the models edit without the dataset installed. Then
it records the masked-token accuracy of the stored weights on
a slice of the test split (`check.json`, which tests/test_pretrained.py
re-measures) and writes MODEL_CARD.md from the runs' metrics, wall times and
the judge's quality table (`<run>/quality/quality.md`).
"""

import datetime
import json
import os
import platform
import shutil
import subprocess

import flax.serialization
import jax
import numpy as np

from maskgit_edit import artefacts
from maskgit_edit import data as data_lib
from maskgit_edit import images as images_lib
from maskgit_edit import released
from maskgit_edit import tokenizing
from maskgit_edit.decoding import sampling
from maskgit_edit.trainers import maskgit

RUNS = {
    "tokenizer": "tokenizer",
    "maskgit": "transformer",
    "judge": "judge",
    "reweight": "kernel",
    "iterate": "transformer",
}
CHECK_NAME = "check.json"
NUM_CHECK_IMAGES = 64
NUM_HELD_OUT = 1024
DATA_FOLDER = "data"


def check_figures(folder: str, num: int = NUM_CHECK_IMAGES) -> dict:
  """Masked-token accuracy / NLL (50% masking) of `folder`'s transformer on
  the tokens of the first `num` test images (at most the split), tokenized
  by its tokenizer."""
  tok_config = artefacts.load_run_config(os.path.join(folder, "tokenizer"))
  model, params, layout, _ = artefacts.load_transformer(
      os.path.join(folder, "maskgit")
  )
  source = data_lib.get_source(tok_config.data, "test")
  num = min(num, len(source))
  images, labels = source.get(np.arange(num))
  tokens = tokenizing.Tokenizer.from_workdir(
      os.path.join(folder, "tokenizer")
  ).tokenize_all(images_lib.to_float(images))
  logits_fn = sampling.logits_fn_for(model, params, layout)
  figures, _ = maskgit.masked_token_metrics(
      lambda inputs: layout.code_logits(logits_fn(inputs, None, None)),
      layout,
      np.asarray(tokens).reshape(num, -1),
      labels,
  )
  return {"num_images": num, **figures}


def _relink(config: dict, sources: dict) -> dict:
  for key, value in config.items():
    if key.endswith("_workdir") and isinstance(value, str):
      for name, source in sources.items():
        if os.path.realpath(value) == os.path.realpath(source):
          config[key] = f"../{name}"
  return config


def export_held_out(data_config, out: str) -> None:
  """The first NUM_HELD_OUT test images of Fashion-MNIST as IDX files."""
  from maskgit_edit.data import fashion_mnist  # pylint: disable=g-import-not-at-top

  folder = os.path.join(out, DATA_FOLDER)
  os.makedirs(folder, exist_ok=True)
  images, labels = fashion_mnist.FashionMnistSource(
      "test",
      fashion_mnist.NATIVE_SIZE,
      data_config.get("fashion_mnist_dir"),
      data_config.get("tfds_data_dir"),
  ).get(np.arange(NUM_HELD_OUT))
  images_name, labels_name = fashion_mnist.FILES["test"]
  fashion_mnist.write_idx(os.path.join(folder, images_name), images[..., 0])
  fashion_mnist.write_idx(os.path.join(folder, labels_name), labels)


def export_run(
    source: str,
    target: str,
    params_name: str,
    sources: dict,
    extra: dict | None = None,
):
  os.makedirs(target, exist_ok=True)
  config = _relink(artefacts.load_run_config(source).to_dict(), sources)
  config.update(extra or {})
  if config["data"]["name"] == "fashion_mnist":
    config["data"]["fashion_mnist_dir"] = f"../{DATA_FOLDER}"
  with open(os.path.join(target, "config.json"), "w") as f:
    json.dump(config, f, indent=1)
  shutil.copyfile(
      os.path.join(source, "final_metrics.json"),
      os.path.join(target, "final_metrics.json"),
  )
  params = released.read_msgpack_params(
      artefacts.params_path(source, params_name)
  )
  half = jax.tree.map(
      lambda x: np.asarray(x, np.float16)
      if np.issubdtype(np.asarray(x).dtype, np.floating)
      else np.asarray(x),
      params,
  )
  with open(artefacts.params_path(target, params_name), "wb") as f:
    f.write(flax.serialization.msgpack_serialize({"params": half}))


def config_name(trainer: str, data: str) -> str:
  """The config file of a trainer's reference run (the fine-tunes' configs
  serve every data set)."""
  fine_tune = trainer in ("reweight", "iterate")
  return f"{trainer}.py" if fine_tune else f"{trainer}_{data}.py"


def model_card(run: str, out: str, data: str, check: dict) -> str:
  commit = (
      subprocess.run(
          ["git", "rev-parse", "HEAD"],
          capture_output=True,
          text=True,
          check=False,
      ).stdout.strip()
      or "unknown"
  )
  lines = [
      f"# Reference `{data}` models",
      "",
      f"Exported {datetime.date.today()} from `{run}` at commit `{commit}` "
      f"by `python scripts/export_pretrained.py --run {run} --out {out}`.",
      f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, "
      f"{platform.system()}; JAX {jax.__version__} on "
      f"{jax.devices()[0].platform}.",
      "",
      f"Made by `python scripts/main.py --data {data} --reference`, which runs "
      "(each command is printed as it runs):",
      "",
      "| run | command | wall time | final metrics |",
      "|---|---|---|---|",
  ]
  for name in RUNS:
    config = artefacts.load_run_config(os.path.join(run, name))
    metrics = artefacts.load_final_metrics(os.path.join(run, name))
    shown = ", ".join(
        f"{k} {v:.4g}"
        for k, v in metrics.items()
        if k.startswith("test_") or k in ("kernel_rel_change",)
    )
    arg = "" if name == "judge" else ":reference"
    lines.append(
        f"| {name} | `python -m maskgit_edit.train --config "
        f"configs/{config_name(config.trainer, data)}{arg} ...` | "
        f"{artefacts.wall_seconds(os.path.join(run, name)) / 60:.1f} min |"
        f" {shown} |"
    )
  lines += [
      "",
      f"Masked-token accuracy of the stored (float16) weights at "
      f"50% masking on the first {check['num_images']} test images: "
      f"{check['masked_accuracy']:.4f} (NLL {check['masked_nll']:.4f}); "
      "tests/test_pretrained.py re-measures it.",
      "",
  ]
  lines += [
      "Wall times are from each run's start to its last metrics line, "
      "with whatever else ran on the machine at the time.",
      "",
  ]
  quality = os.path.join(run, "quality")
  if os.path.exists(os.path.join(quality, "quality.md")):
    with open(os.path.join(quality, "quality.md")) as f:
      lines += [
          "## Sample quality under the judge (`scripts/sample_quality.py`)",
          "",
          f.read(),
      ]
    with open(os.path.join(quality, "quality.json")) as f:
      report = json.load(f)
    met = lambda ok: "met" if ok else "**not met**"
    lines += [
        "Targets: sample class accuracy >= 0.9 x the real test images': "
        f"{met(report['accuracy_ratio'] >= 0.9)} "
        f"({report['accuracy_ratio']:.2f}); sample judge-FID <= 2 x the "
        f"reconstructions': {met(report['fid_ratio'] <= 2)} "
        f"({report['fid_ratio']:.2f})."
    ]
  return "\n".join(lines) + "\n"


def export(run: str, out: str) -> dict:
  """Exports the five finished runs in `run` to `out` (see the module doc);
  returns the check figures."""
  sources = {name: os.path.join(run, name) for name in RUNS}
  for source in sources.values():
    artefacts.load_final_metrics(source)  # Every run must have finished.
  layout = artefacts.transformer_layout(
      artefacts.load_run_config(sources["maskgit"])
  )
  data_config = artefacts.load_run_config(sources["tokenizer"]).data
  if data_config.name == "fashion_mnist":
    export_held_out(data_config, out)
  for name, params_name in RUNS.items():
    extra = {"num_classes": layout.num_classes} if name == "maskgit" else None
    export_run(
        sources[name], os.path.join(out, name), params_name, sources, extra
    )
  check = check_figures(out)
  with open(os.path.join(out, CHECK_NAME), "w") as f:
    json.dump(check, f, indent=1)
  with open(os.path.join(out, "MODEL_CARD.md"), "w") as f:
    f.write(model_card(run, out, data_config.name, check))
  return check
