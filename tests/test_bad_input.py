"""Every command-line tool answers bad input with one line (`error: ...`),
status 2 and no traceback, and changes no file already saved.

`CASES` is the table of docs/bad_input.md; each case checks that its row
there gives the message the tool prints. After changing a message, rewrite
the table with

  MASKGIT_EDIT_WRITE_DOCS=1 python -m pytest -p no:xdist tests/test_bad_input.py
"""

import hashlib
import os
import resource
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from conftest import load_script

DOC = os.path.join(ROOT, "docs", "bad_input.md")
WRITE_DOCS = bool(os.environ.get("MASKGIT_EDIT_WRITE_DOCS"))
# A write past this many bytes fails as on a full disk (EFBIG).
FULL_DISK_BYTES = 64

EDIT = ["-m", "maskgit_edit.edit", "--label=0", "--out={d}/kept.png"]
EDIT_OK = [*EDIT, "--source={d}/source.png", "--mask={d}/mask.png"]
RUNS = ["--tokenizer_workdir={d}/pre/tokenizer"]
RUNS += ["--transformer_workdir={d}/pre/maskgit"]
SWAPPED = ["--tokenizer_workdir={d}/pre/maskgit"]
SWAPPED += ["--transformer_workdir={d}/pre/tokenizer"]
STROKES = ["make_strokes.py", "--run={d}/pre/tokenizer", "--num_images=2"]
EDITS = ["scripts/run_edits.py", *RUNS, "--variants", "none"]
EDITS_OK = [*EDITS, "--manifest={d}/strokes/manifest.json"]
RENDER = ["scripts/render_comparison_table.py", "--output_dir={d}/rendered"]
GENERATE = ["scripts/generate.py", *RUNS, "--out={d}/generated"]
QUALITY = ["scripts/sample_quality.py", *RUNS, "--num_images=10"]
QUALITY_OK = [*QUALITY, "--judge_workdir={d}/pre/judge"]
TRAIN = ["-m", "maskgit_edit.train"]
TOKENIZER = "--config=configs/tokenizer_shapes.py:runlocal"
MAIN = ["scripts/main.py", "--quick"]

# (tool, bad input, arguments ({d}: the folder of `bad_inputs`), words the
# error must hold).
CASES = [
    (
        "train",
        "missing config file",
        [*TRAIN, "--config={d}/nope.py", "--workdir={d}/run"],
        ["nope.py"],
    ),
    (
        "train",
        "run folder of another trainer",
        [*TRAIN, TOKENIZER, "--workdir={d}/pre/maskgit"],
        ["holds a 'maskgit' run"],
    ),
    (
        "train",
        "run folder of exported weights",
        [*TRAIN, TOKENIZER, "--workdir={d}/pre/tokenizer"],
        ["without checkpoints"],
    ),
    (
        "train",
        "tokenizer run of the wrong kind",
        [
            *TRAIN,
            "--config=configs/maskgit_shapes.py:runlocal",
            "--config.tokenizer_workdir={d}/pre/maskgit",
            "--workdir={d}/run",
        ],
        ["not a tokenizer run"],
    ),
    (
        "train",
        "unwritable workdir",
        [*TRAIN, TOKENIZER, "--workdir={d}/afile/run"],
        ["afile"],
    ),
    (
        "edit",
        "missing file",
        [*EDIT, "--source={d}/nope.png", "--mask={d}/mask.png"],
        ["nope.png"],
    ),
    (
        "edit",
        "corrupt PNG",
        [*EDIT, "--source={d}/corrupt.png", "--mask={d}/mask.png"],
        ["corrupt.png", "not a readable image"],
    ),
    (
        "edit",
        "wrong-size image",
        [*EDIT, "--source={d}/big.png", "--mask={d}/big_mask.png"],
        ["64 px", "32 px"],
    ),
    (
        "edit",
        "mask of the wrong size",
        [*EDIT, "--source={d}/source.png", "--mask={d}/small_mask.png"],
        ["16x16"],
    ),
    (
        "edit",
        "empty mask",
        [*EDIT, "--source={d}/source.png", "--mask={d}/empty_mask.png"],
        ["marks no pixel"],
    ),
    ("edit", "unknown variant", [*EDIT_OK, "--variant=foo"], ["--variant=foo"]),
    (
        "edit",
        "unknown matmul dtype",
        [*EDIT_OK, "--matmul_dtype=int8"],
        ["--matmul_dtype=int8", "bfloat16"],
    ),
    (
        "edit",
        "knob out of range",
        [*EDIT_OK, "--stroke={d}/source.png", "--variant=sdedit", "--knob=3"],
        ["[0, 1]"],
    ),
    (
        "edit",
        "class out of range",
        [*EDIT_OK, "--label=12"],
        ["0 to 9", "ankle boot"],
    ),
    (
        "edit",
        "run folders swapped",
        [*EDIT_OK, *SWAPPED],
        ["not a tokenizer run"],
    ),
    (
        "edit",
        "unwritable --out",
        [*EDIT_OK, "--out={d}/afile/out.png"],
        ["afile"],
    ),
    (
        "edit",
        "a decode setting out of range",
        [*EDIT_OK, "--num_steps=0"],
        ["num_steps must be >= 1"],
    ),
    ("edit", "full disk", EDIT_OK, ["File too large"]),
    (
        "app",
        "run folders swapped",
        ["-m", "maskgit_edit.app", *SWAPPED, "--port=0"],
        ["not a tokenizer run"],
    ),
    (
        "app",
        "missing run folder",
        ["-m", "maskgit_edit.app", "--run={d}/nope", "--port=0"],
        ["nope"],
    ),
    (
        "app",
        "port out of range",
        ["-m", "maskgit_edit.app", "--port=-5"],
        ["--port"],
    ),
    (
        "make_strokes.py",
        "run folder that is not a run",
        ["make_strokes.py", "--run={d}", "--out={d}/new_strokes"],
        ["config.json"],
    ),
    (
        "make_strokes.py",
        "missing folder",
        [
            "make_strokes.py",
            "--folder={d}/nope",
            "--image_size=32",
            "--out={d}/new_strokes",
        ],
        ["nope", "does not exist"],
    ),
    (
        "make_strokes.py",
        "corrupt PNG",
        [
            "make_strokes.py",
            "--folder={d}/corrupt_folder",
            "--image_size=32",
            "--out={d}/new_strokes",
        ],
        ["corrupt.png"],
    ),
    (
        "make_strokes.py",
        "unknown stroke mode",
        [*STROKES, "--modes=foo", "--out={d}/new_strokes"],
        ["foo"],
    ),
    (
        "make_strokes.py",
        "--out holding another stroke set",
        [*STROKES, "--seed=1", "--out={d}/strokes"],
        ["made otherwise"],
    ),
    (
        "make_strokes.py",
        "unwritable --out",
        [*STROKES, "--out={d}/afile/strokes"],
        ["afile"],
    ),
    (
        "make_strokes.py",
        "full disk",
        [*STROKES, "--out={d}/strokes"],
        ["File too large"],
    ),
    (
        "run_edits.py",
        "missing manifest",
        [*EDITS, "--manifest={d}/nope.json", "--out_dir={d}/edits"],
        ["nope.json"],
    ),
    (
        "run_edits.py",
        "manifest that is not JSON",
        [*EDITS, "--manifest={d}/notjson.json", "--out_dir={d}/edits"],
        ["notjson.json", "not valid JSON"],
    ),
    (
        "run_edits.py",
        "unknown variant",
        [*EDITS_OK, "--variants", "foo", "--out_dir={d}/edits"],
        ["foo"],
    ),
    (
        "run_edits.py",
        "knob out of range",
        [*EDITS_OK, "--knobs", "none=-1", "--out_dir={d}/edits"],
        ["-1"],
    ),
    (
        "run_edits.py",
        "run folders swapped",
        [
            "scripts/run_edits.py",
            *SWAPPED,
            "--manifest={d}/strokes/manifest.json",
            "--out_dir={d}/edits",
        ],
        ["not a tokenizer run"],
    ),
    (
        "run_edits.py",
        "judge run of the wrong kind",
        [*EDITS_OK, "--judge_workdir={d}/pre/maskgit", "--out_dir={d}/edits"],
        ["not a judge run"],
    ),
    (
        "run_edits.py",
        "--out_dir holding another run's edits",
        [*EDITS_OK, "--out_dir={d}/other_edits"],
        ["another run"],
    ),
    (
        "run_edits.py",
        "unwritable --out_dir",
        [*EDITS_OK, "--out_dir={d}/afile/edits"],
        ["afile"],
    ),
    (
        "render_comparison_table.py",
        "missing results file",
        [*RENDER, "--results={d}/nope.json"],
        ["nope.json"],
    ),
    (
        "render_comparison_table.py",
        "results that are not JSON",
        [*RENDER, "--results={d}/notjson.json"],
        ["not valid JSON"],
    ),
    (
        "render_comparison_table.py",
        "results of an older schema",
        [*RENDER, "--results={d}/old_results.json"],
        ["schema version"],
    ),
    (
        "render_comparison_table.py",
        "a stroke manifest, not results",
        [*RENDER, "--results={d}/strokes/manifest.json"],
        ["not a results file"],
    ),
    (
        "generate.py",
        "run folders swapped",
        ["scripts/generate.py", *SWAPPED, "--out={d}/generated"],
        ["not a tokenizer run"],
    ),
    (
        "generate.py",
        "unknown schedule",
        [*GENERATE, "--schedule=foo"],
        ["schedule 'foo'"],
    ),
    (
        "generate.py",
        "class out of range",
        [*GENERATE, "--new_label=12"],
        ["new_label 12"],
    ),
    (
        "generate.py",
        "unwritable --out",
        [*GENERATE[:-1], "--out={d}/afile/generated"],
        ["afile"],
    ),
    (
        "sample_quality.py",
        "judge run of the wrong kind",
        [
            *QUALITY,
            "--judge_workdir={d}/pre/tokenizer",
            "--out_dir={d}/quality",
        ],
        ["not a judge run"],
    ),
    (
        "sample_quality.py",
        "missing stroke manifest",
        [*QUALITY_OK, "--strokes={d}/nope.json", "--out_dir={d}/quality"],
        ["nope.json"],
    ),
    (
        "sample_quality.py",
        "unwritable --out_dir",
        [*QUALITY_OK, "--out_dir={d}/afile/quality"],
        ["afile"],
    ),
    (
        "benchmark.py",
        "configs that do not exist",
        ["scripts/benchmark.py", "--configs=nope", "--out={d}/bench.json"],
        ["No config", "tokenizer_nope.py"],
    ),
    (
        "benchmark_peer.py",
        "unknown size",
        ["scripts/benchmark_peer.py", "--sizes=huge", "--out={d}/peer.json"],
        ["Unknown size 'huge'"],
    ),
    (
        "benchmark_peer.py",
        "a batch that does not fit in memory",
        [
            "scripts/benchmark_peer.py",
            "--sizes=imagenet512",
            "--batches=1000000",
            "--out={d}/peer.json",
        ],
        ["GiB", "use a smaller batch"],
    ),
    (
        "benchmark_peer.py",
        "GEMMs of torch.compile",
        [
            "scripts/benchmark_peer.py",
            "--gemms",
            "--implementations=jax,torch_compile",
            "--out={d}/peer.json",
        ],
        ["--implementations jax,torch_eager"],
    ),
    (
        "benchmark_peer.py",
        "two parts at once",
        [
            "scripts/benchmark_peer.py",
            "--gemms",
            "--attention",
            "--out={d}/peer.json",
        ],
        ["--attention: not allowed with argument --gemms"],
    ),
    (
        "main.py",
        "unknown data",
        [*MAIN, "--data=foo", "--workdir={d}/pipeline"],
        ["--data 'foo'"],
    ),
    (
        "main.py",
        "a folder too small to study",
        [*MAIN, "--data=folder:{d}/few_images", "--workdir={d}/pipeline"],
        ["held-out split has", "add images"],
    ),
    (
        "main.py",
        "unknown stage",
        [*MAIN, "--only=foo", "--workdir={d}/pipeline"],
        ["'foo'"],
    ),
    (
        "main.py",
        "no pretrained runs for the data",
        ["scripts/main.py", "--pretrained", "--data=photos"],
        ["No pretrained runs"],
    ),
    (
        "main.py",
        "unwritable --workdir",
        [*MAIN, "--data=shapes", "--workdir={d}/afile/pipeline"],
        ["afile"],
    ),
]


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
  """A folder of bad and good inputs, and a copy of the committed runs."""
  d = tmp_path_factory.mktemp("bad_inputs")
  shutil.copytree(os.path.join(ROOT, "pretrained", "fashion_mnist"), d / "pre")
  source = np.zeros((32, 32, 3), np.uint8)
  source[8:24, 8:24] = 200
  mask = np.zeros((32, 32), np.uint8)
  mask[10:20, 10:20] = 255
  Image.fromarray(source).save(d / "source.png")
  Image.fromarray(mask).save(d / "mask.png")
  Image.fromarray(np.zeros_like(mask)).save(d / "empty_mask.png")
  Image.fromarray(mask[:16, :16]).save(d / "small_mask.png")
  Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(d / "big.png")
  Image.fromarray(np.pad(mask, 16)).save(d / "big_mask.png")
  (d / "corrupt.png").write_bytes((d / "source.png").read_bytes()[:60])
  (d / "corrupt_folder").mkdir()
  shutil.copy(d / "corrupt.png", d / "corrupt_folder")
  (d / "few_images").mkdir()
  for i in range(8):
    Image.fromarray(np.full((32, 32, 3), 30 * i, np.uint8)).save(
        d / "few_images" / f"{i}.png"
    )
  (d / "notjson.json").write_text("{nope")
  (d / "old_results.json").write_text('{"schema_version": 1}')
  (d / "afile").write_text("a file, not a folder")
  # An output saved before: a failing edit must leave it as it is.
  shutil.copy(d / "source.png", d / "kept.png")
  load_script("make_strokes.py").main(
      [f"--run={d}/pre/tokenizer", "--num_images=2", f"--out={d}/strokes"]
  )
  (d / "other_edits").mkdir()
  (d / "other_edits" / "run.json").write_text('{"manifest": "elsewhere"}')
  return d


def _snapshot(root) -> dict[str, str]:
  return {
      os.path.join(folder, name): hashlib.sha256(
          open(os.path.join(folder, name), "rb").read()
      ).hexdigest()
      for folder, _, names in os.walk(root)
      for name in names
  }


def _full_disk():
  resource.setrlimit(resource.RLIMIT_FSIZE, (FULL_DISK_BYTES, FULL_DISK_BYTES))


def _run(args, full_disk=False, **env):
  return subprocess.run(
      [sys.executable, *args],
      cwd=ROOT,
      text=True,
      capture_output=True,
      timeout=300,
      env=dict(os.environ, JAX_PLATFORMS="cpu", **env),
      preexec_fn=_full_disk if full_disk else None,
  )


def _error_line(result, *words) -> str:
  assert result.returncode == 2, result.stderr[-2000:]
  assert "Traceback" not in result.stderr, result.stderr[-2000:]
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
  for word in words:
    assert word in lines[0]
  return lines[0]


def _doc_row(tool: str, bad: str, message: str) -> str:
  return f"| `{tool}` | {bad} | `{message}` |"


_ROWS = {}


@pytest.fixture(scope="module", autouse=True)
def _write_docs():
  yield
  if WRITE_DOCS and len(_ROWS) == len(CASES):
    rows = [_ROWS[(tool, bad)] for tool, bad, _, _ in CASES]
    with open(DOC, "w") as f:
      f.write(
          "# Bad input: what each command says\n\n"
          "Every command-line tool answers bad input with one line on stderr"
          " and status 2, no traceback, and leaves every file it had saved"
          " as it was (`MASKGIT_EDIT_TRACEBACK=1` shows the traceback). The"
          " table is written by `tests/test_bad_input.py`, which checks each"
          " row against the tool (DIR: the test's folder of inputs, ROOT: the"
          " repository; a full"
          f" disk is a file size limit of {FULL_DISK_BYTES} bytes).\n\n"
          "| Tool | Bad input | Error |\n|---|---|---|\n"
          + "\n".join(rows)
          + "\n"
      )


@pytest.mark.parametrize(
    "tool,bad,args,words", CASES, ids=[f"{t}: {b}" for t, b, _, _ in CASES]
)
def test_bad_input_gets_one_line_and_changes_nothing(
    bad_inputs, tool, bad, args, words
):
  before = _snapshot(bad_inputs)
  result = _run(
      [a.format(d=bad_inputs) for a in args], full_disk=bad == "full disk"
  )
  message = _error_line(result, *words)
  after = _snapshot(bad_inputs)
  assert {path: after.get(path) for path in before} == before
  message = message.replace(str(bad_inputs), "DIR").replace(ROOT, "ROOT")
  row = _doc_row(tool, bad, message)
  _ROWS[(tool, bad)] = row
  if not WRITE_DOCS:
    with open(DOC) as f:
      assert row in f.read().splitlines(), f"docs/bad_input.md lacks {row}"


def test_a_class_conditional_edit_without_a_label_names_the_flag(bad_inputs):
  # Without JAX_PLATFORMS, JAX looks for a TPU: no INFO line about it.
  env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}
  result = subprocess.run(
      [
          sys.executable,
          "-m",
          "maskgit_edit.edit",
          f"--source={bad_inputs}/source.png",
          f"--mask={bad_inputs}/mask.png",
          f"--out={bad_inputs}/out.png",
      ],
      cwd=ROOT,
      text=True,
      capture_output=True,
      timeout=300,
      env=env,
  )
  _error_line(result, "class-conditional", "--label")


def test_traceback_on_request(bad_inputs):
  result = _run(
      [
          "make_strokes.py",
          f"--run={bad_inputs}",
          f"--out={bad_inputs}/new_strokes",
      ],
      MASKGIT_EDIT_TRACEBACK="1",
  )
  assert result.returncode != 0 and "Traceback" in result.stderr
