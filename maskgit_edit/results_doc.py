"""docs/results.md from the runs of `scripts/main.py`
(`scripts/write_results.py`).

Reads, for each budget whose run folder exists (runs/<data> for the
Quickstart, runs/<data>_reference for the reference), the trainers'
final_metrics.json and wall times and the judge's quality table
(quality/quality.md); from runs/<data>_pretrained the editing study
(output/comparison.md); and any extra tokenizer runs named in `compare`
(a side-by-side of tokenizers, e.g. the convolutional encoder). Nothing is
typed in by hand: rerun it after the runs change.
"""

import datetime
import json
import os
import re

from maskgit_edit import artefacts
from maskgit_edit import files
from maskgit_edit import pipeline

BUDGETS = {"Quickstart": "", "reference": "_reference"}
# Load runs of the edit page: <runs_dir>/load_page/<name>.json, each written
# by its command.
LOAD_RUNS = {
    "edits": "python scripts/load_page.py --clients 16 --requests 160"
    " --out runs/load_page/edits.json",
    "mixed": "python scripts/load_page.py --clients 16 --requests 160 --mixed"
    " --out runs/load_page/mixed.json",
}


def _metrics(run: str) -> dict:
  try:
    return artefacts.load_final_metrics(run)
  except FileNotFoundError:
    return {}


def flat_codes(tokenizer_run: str, num: int = 512) -> str:
  """Codes of the commonest flat patch over the first `num` test images,
  from the run's token cache (`trainers.tokenizer.flat_patch_codes`)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from maskgit_edit import data as data_lib  # pylint: disable=g-import-not-at-top
  from maskgit_edit.trainers import tokenizer  # pylint: disable=g-import-not-at-top

  tokens, _ = artefacts.load_token_cache(tokenizer_run, "test")
  config = artefacts.load_run_config(tokenizer_run)
  images, _ = data_lib.get_source(config.data, "test").get(np.arange(num))
  figures = tokenizer.flat_patch_codes(images, tokens[:num])
  return (
      f"{figures['flat_patch_codes']:.0f} ({figures['flat_patch_top_share']:.1%}"
      " the commonest)"
  )


def _quality(folder: str) -> dict:
  """The quality.json of a pipeline folder ({} before its quality stage)."""
  path = os.path.join(folder, "quality", "quality.json")
  return json.load(open(path)) if os.path.exists(path) else {}


def _figure(figures: dict, key: str, fmt: str) -> str:
  return fmt.format(figures[key]) if key in figures else "–"


def model_row(name: str, folder: str) -> str:
  """One table row: a budget's tokenizer, transformer, judge and targets."""
  tok = _metrics(os.path.join(folder, "tokenizer"))
  mg = _metrics(os.path.join(folder, "maskgit"))
  judge = _metrics(os.path.join(folder, "judge"))
  minutes = {
      t: artefacts.wall_seconds(os.path.join(folder, t)) / 60
      for t in pipeline.TRAINERS
      if os.path.exists(os.path.join(folder, t, "metrics.jsonl"))
  }
  quality = _quality(folder)
  return (
      f"| {name} | {_figure(tok, 'test_psnr', '{:.2f} dB')}, perplexity"
      f" {_figure(tok, 'test_perplexity', '{:.0f}')}, codes of the black patch:"
      f" {flat_codes(os.path.join(folder, 'tokenizer')) if tok else '–'} |"
      f" {_figure(mg, 'test_masked_accuracy', '{:.1%}')} (NLL"
      f" {_figure(mg, 'test_masked_nll', '{:.2f}')}; unigram"
      f" {_figure(mg, 'unigram_accuracy', '{:.1%}')}) |"
      f" {_figure(judge, 'test_accuracy', '{:.1%}')} |"
      f" {sum(minutes.values()):.1f} ("
      + ", ".join(f"{t} {m:.1f}" for t, m in minutes.items())
      + f") | {_figure(quality, 'accuracy_ratio', '{:.2f}')} |"
      f" {_figure(quality, 'fid_ratio', '{:.2f}')} |"
  )


def tokenizer_row(run: str) -> str:
  """A tokenizer run and the transformer trained on it (run/../maskgit)."""
  tok = _metrics(run)
  config = artefacts.load_run_config(run).tokenizer
  folder = os.path.dirname(os.path.normpath(run))
  mg = _metrics(os.path.join(folder, "maskgit"))
  rows = {r["name"]: r for r in _quality(folder).get("rows", [])}
  fid = lambda name: _figure(rows.get(name, {}), "fid", "{:.2f}")
  return (
      f"| `{config.get('encoder_kind', 'conv')}` ({os.path.relpath(folder, files.CHECKOUT)}) |"
      f" {_figure(tok, 'test_perplexity', '{:.0f}')} |"
      f" {flat_codes(run)} |"
      f" {_figure(tok, 'test_psnr', '{:.2f}')} | {fid('tokenizer reconstructions')} |"
      f" {_figure(mg, 'test_masked_accuracy', '{:.1%}')} /"
      f" {_figure(mg, 'test_masked_nll', '{:.2f}')} | {fid('samples')} |"
  )


def model_sections(runs_dir: str, data: str, image_dir: str) -> list[str]:
  """The models table and each budget's judge validation, as markdown lines
  (image links relative to `image_dir`'s parent)."""
  lines = [
      "| budget | tokenizer (test) | transformer: test masked-token accuracy at"
      " 50% masking | judge test accuracy | training minutes (per stage) |"
      " sample class accuracy / real | sample judge-FID / reconstructions' |",
      "|---|---|---|---|---|---|---|",
  ]
  for name, suffix in BUDGETS.items():
    folder = os.path.join(runs_dir, data + suffix)
    if os.path.isdir(folder):
      lines.append(model_row(name, folder))
  lines += [
      "",
      "Targets: class accuracy ratio >= 0.9 and judge-FID ratio <= 2 (1,000"
      " class-conditional samples, 100 per class). Wall times are each run's,"
      " with whatever else ran on the machine at the time.",
  ]
  for name, suffix in BUDGETS.items():
    quality = os.path.join(runs_dir, data + suffix, "quality", "quality.md")
    if os.path.exists(quality):
      prefix = data + suffix  # main.py's figure names
      lines += [
          "",
          f"**{name}** (`python scripts/main.py --data {data}"
          f"{' --reference' if suffix else ''}`, its `quality` stage:"
          " `scripts/sample_quality.py`). Each row is one class: two real"
          " test images, their reconstructions, then samples.",
          "",
          f"![{name} samples]({image_dir}/{prefix}_samples.png)",
          "",
          open(quality).read().strip(),
      ]
  return lines


def results(runs_dir: str, data: str, compare: list[str]) -> str:
  lines = [
      f"# Results on `{data}`",
      "",
      f"Written by `python scripts/write_results.py --data {data}` at commit"
      f" `{files.checkout_commit()}` on {datetime.date.today()}, from the runs of"
      f" `python scripts/main.py --data {data}` (Quickstart) and `... --reference`;"
      " every figure below is read from those runs' files.",
      "",
      "## Models and sample quality",
      "",
      *model_sections(runs_dir, data, "../imgs"),
  ]
  if compare:
    lines += [
        "",
        "## Tokenizers side by side",
        "",
        "The same data and budget, the tokenizer's encoder changed"
        " (`--config.tokenizer.encoder_kind`); each transformer trained on"
        " its tokenizer's codes. Codes of the black patch: distinct codes given"
        " to the patches that are wholly black (the commonest one-colour"
        " patch) in the first 512 test images, and the share of the commonest"
        " code.",
        "",
        "| encoder (runs) | code perplexity | codes of the black patch | PSNR (dB) |"
        " reconstructions' judge-FID | transformer masked accuracy / NLL |"
        " samples' judge-FID |",
        "|---|---|---|---|---|---|---|",
        *[tokenizer_row(run) for run in compare],
    ]
  reference_study = os.path.join(files.CHECKOUT, "output", "comparison.md")
  if os.path.exists(reference_study):
    lines += [
        "",
        "## Editing study on the reference models",
        "",
        f"`python scripts/main.py --data {data} --reference` (its strokes,"
        " edits and render stages: 256 auto-strokes on 128 held-out test"
        " images, every variant over its knob; the grid, plot and example"
        " cells are committed in `output/`).",
        "",
        _rebased(open(reference_study).read(), "../output/"),
    ]
  study = os.path.join(
      runs_dir, f"{data}_pretrained", "output", "comparison.md"
  )
  if os.path.exists(study):
    lines += [
        "",
        "## Editing study on the committed models",
        "",
        f"`python scripts/main.py --data {data} --pretrained`; from"
        f" `runs/{data}_pretrained/output/comparison.md` (its image paths"
        " are relative to that folder).",
        "",
        f"![comparison grid](../imgs/{data}_pretrained_comparison_grid.png)",
        "",
        f"![faithfulness vs realism](../imgs/{data}_pretrained_faithfulness_vs_realism.png)",
        "",
        _tables_only(open(study).read()),
    ]
  loads = [
      (command, os.path.join(runs_dir, "load_page", f"{name}.json"))
      for name, command in LOAD_RUNS.items()
  ]
  if any(os.path.exists(path) for _, path in loads):
    lines += [
        "",
        "## The edit page under load",
        "",
        "`scripts/load_page.py` against the page (committed models) in its"
        " own process; latencies are of the edits, which queue on one model.",
        "",
        "| command | requests | seconds | answers by status | edit p50 / p95"
        " (s) | server peak RSS (MiB) | server tracebacks |",
        "|---|---|---|---|---|---|---|",
    ]
    for command, path in loads:
      if os.path.exists(path):
        with open(path) as f:
          r = json.load(f)
        statuses = ", ".join(f"{k}: {v}" for k, v in r["statuses"].items())
        lines.append(
            f"| `{command}` | {r['sent']} | {r['seconds']:.1f} | {statuses} |"
            f" {r['edit_p50_s']:.2f} / {r['edit_p95_s']:.2f} |"
            f" {r['server_peak_rss_mib']:.0f} | {r['server_tracebacks']} |"
        )
  return "\n".join(lines).rstrip() + "\n"


def _demoted(lines) -> str:
  """Markdown lines under this page's heading (two levels down)."""
  return "\n".join(
      "##" + line if line.startswith("#") else line for line in lines
  ).strip()


def _rebased(markdown: str, prefix: str) -> str:
  """The study's markdown under this page's heading, its relative links
  prefixed."""
  return _demoted(
      re.sub(r"\]\((?![a-z]+:|/)", f"]({prefix}", markdown).splitlines()
  )


def _tables_only(markdown: str) -> str:
  """The study's markdown under this page's heading, without its images
  (the grid and the plot are shown above; its cells live in runs/)."""
  return _demoted(
      line
      for line in markdown.splitlines()
      if "](cells/" not in line and "![" not in line
  )
