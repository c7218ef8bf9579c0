"""This project's decode against a plain PyTorch MaskGIT, in separate processes.

Each measurement is one fresh process of one implementation at one (size,
batch): `jax_worker` (this project's `Sampler` and transformer) or the
checkout's `benchmarks/torch_worker.py` (eager or `torch.compile`, under
`torch.inference_mode`). Processes of the implementations alternate, in a
reversed order every round, so that a slow spell of a shared machine falls
on all of them. Both sides use every core of the machine, one at a time.

A worker builds the transformer with random weights, warms up (compiles),
then times `reps` forward passes over the whole sequence and `reps` decodes
(`NUM_STEPS` steps, every token unknown, class-conditional). The other
`PARTS` time one piece of a forward instead, the same work on both sides
(torch eager only), to say where a forward's gap lies: "gemms", a chain of
the dense layers' and logits' matrix products at the peer's shapes
(`gemm_shapes`), and "attention", every layer's softmax attention on
projected queries, keys and values (ours `blocked_attention`, the peer's
`scaled_dot_product_attention`). Within
`budget_s` per measurement: a forward or decode whose warm-up shows that its
reps would not fit gets fewer reps (at least one), and a decode projected
from the forward to take longer than the whole budget is not run.
"""

from collections.abc import Sequence
import dataclasses
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from maskgit_edit import files
from maskgit_edit.benchmarking import machine

NUM_STEPS = 12
# Seconds of untimed calls before timing calls shorter than this
# (`_timed_calls`).
WARM_UP_S = 1.0
# name -> (layers, hidden, heads, MLP width, token grid side, codebook,
# classes). "reference" is the committed Fashion-MNIST model's transformer,
# "8x512" a mid-size one, "imagenet256/512" the released architectures.
SIZES = {
    "reference": (6, 256, 8, 1024, 8, 512, 10),
    "8x512": (8, 512, 8, 2048, 16, 1024, 10),
    "imagenet256": (24, 768, 16, 3072, 16, 1024, 1000),
    "imagenet512": (24, 768, 16, 3072, 32, 1024, 1000),
}
IMPLEMENTATIONS = ("jax", "torch_eager", "torch_compile")
PEERS = ("torch_eager", "torch_compile")
# What a worker times -> the implementations that can time it: "model" is
# the whole forward and decode; the parts run eagerly (one library call per
# product or attention: compiling them adds nothing).
PARTS = {
    "model": IMPLEMENTATIONS,
    "gemms": ("jax", "torch_eager"),
    "attention": ("jax", "torch_eager"),
}


def model_sizes(size: str) -> dict[str, int]:
  """The transformer and token layout of a size of `SIZES`."""
  layers, hidden, heads, mlp, side, codes, classes = SIZES[size]
  return {
      "num_layers": layers,
      "hidden_size": hidden,
      "num_heads": heads,
      "intermediate_size": mlp,
      "grid_side": side,
      "codebook_size": codes,
      "num_classes": classes,
      # Codes, then classes, then [MASK] (`models.TokenLayout`).
      "vocab_size": codes + classes + 1,
      "seq_len": side * side + 1,
  }


@dataclasses.dataclass(frozen=True)
class Spec:
  """One measurement: what a worker builds and times (JSON on its argv)."""

  implementation: str
  size: str
  batch: int
  reps: int
  budget_s: float
  threads: int
  num_steps: int = NUM_STEPS
  seed: int = 0
  part: str = "model"

  @property
  def model(self) -> dict[str, int]:
    return model_sizes(self.size)

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self))

  @classmethod
  def from_json(cls, text: str) -> "Spec":
    return cls(**json.loads(text))


def gemm_shapes(size: str) -> list[tuple[int, int]]:
  """(K, N) of the weight matrices a forward multiplies its [B*L, K]
  activations by, in the peer's order: per layer the fused query/key/value
  (ours runs three H x H products, the same FLOPs), the attention output
  and the two MLP products; then the head's dense layer and the logits
  against the word embeddings."""
  m = model_sizes(size)
  hidden, mlp = m["hidden_size"], m["intermediate_size"]
  layer = [(hidden, 3 * hidden), (hidden, hidden), (hidden, mlp), (mlp, hidden)]
  return layer * m["num_layers"] + [(hidden, hidden), (hidden, m["vocab_size"])]


def gemm_flops(size: str, batch: int) -> int:
  """FLOPs of the `gemm_shapes` chain on `batch` sequences."""
  rows = batch * model_sizes(size)["seq_len"]
  return sum(2 * rows * k * n for k, n in gemm_shapes(size))


def attention_flops(size: str, batch: int) -> int:
  """FLOPs of every layer's attention products (scores and values) on
  `batch` sequences."""
  m = model_sizes(size)
  length = m["seq_len"]
  return 4 * m["num_layers"] * batch * length * length * m["hidden_size"]


def part_flops(part: str, size: str, batch: int) -> int:
  """FLOPs of a part other than "model" (see `PARTS`)."""
  return {"gemms": gemm_flops, "attention": attention_flops}[part](size, batch)


def memory_bytes(size: str, batch: int) -> int:
  """A bound on a decode's activations: the attention scores and the MLP
  and logit activations of one layer, float32, times 4 for the temporaries
  XLA and torch keep alive."""
  m = model_sizes(size)
  length = m["seq_len"]
  per_layer = (
      batch
      * length
      * (m["num_heads"] * length + m["intermediate_size"] + m["vocab_size"])
  )
  return 4 * 4 * per_layer


def available_bytes() -> int:
  return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def check(
    sizes: Sequence[str],
    batches: Sequence[int],
    implementations,
    part: str = "model",
):
  """Raises ValueError naming the first cell that cannot run."""
  if part not in PARTS:
    raise ValueError(f"Unknown part {part!r}; known: {', '.join(PARTS)}.")
  for size in sizes:
    if size not in SIZES:
      raise ValueError(f"Unknown size {size!r}; known: {', '.join(SIZES)}.")
  for implementation in implementations:
    if implementation not in IMPLEMENTATIONS:
      raise ValueError(
          f"Unknown implementation {implementation!r}; known: "
          f"{', '.join(IMPLEMENTATIONS)}."
      )
  if set(implementations) - set(PARTS[part]):
    raise ValueError(
        f"With --{part}, torch runs eagerly (one library call per product or"
        " attention: compiling changes nothing there): use"
        f" --implementations {','.join(PARTS[part])}."
    )
  if any(b < 1 for b in batches):
    raise ValueError(f"Batch sizes must be >= 1, got {list(batches)}.")
  for size in sizes:
    for batch in batches:
      need, have = memory_bytes(size, batch), available_bytes()
      if need > have:
        raise ValueError(
            f"Batch {batch} at size {size} needs about {need / 2**30:.1f} "
            "GiB, more than this machine has free: use a smaller batch."
        )
  if set(implementations) & set(PEERS) and not importlib.util.find_spec(
      "torch"
  ):
    raise ValueError("The PyTorch peer needs torch: pip install -e '.[peer]'.")


def run_worker(spec: Spec) -> dict[str, Any]:
  """Runs one measurement in a fresh process; returns its record."""
  module = (
      "maskgit_edit.benchmarking.jax_worker"
      if spec.implementation == "jax"
      else "benchmarks.torch_worker"
  )
  env = dict(os.environ, PYTHONPATH=files.CHECKOUT)
  done = subprocess.run(
      [sys.executable, "-m", module, spec.to_json()],
      cwd=files.CHECKOUT,
      env=env,
      capture_output=True,
      text=True,
      check=False,
  )
  if done.returncode != 0:
    tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
    raise RuntimeError(
        f"The {spec.implementation} worker at {spec.size}, batch "
        f"{spec.batch} failed (exit {done.returncode}): {tail}"
    )
  return json.loads(done.stdout.strip().splitlines()[-1])


def _summary(seconds: Sequence[float]) -> dict[str, Any] | None:
  if not seconds:
    return None
  return {
      "median_s": statistics.median(seconds),
      "min_s": min(seconds),
      "max_s": max(seconds),
      "n": len(seconds),
  }


def measure_cell(
    size: str,
    batch: int,
    *,
    implementations: Sequence[str],
    reps: int,
    rounds: int,
    budget_s: float,
    threads: int,
    part: str = "model",
    log=print,
) -> dict[str, Any]:
  """Every implementation at one (size, batch), in alternating processes.

  Returns:
    {"size", "batch", "commit", "model", "by_implementation": {implementation:
    {"forward": Summary, "decode": Summary or None, "skipped_decode": reason
    or None, "compile_s", "threads", "version"}}}; a Summary is
    {"median_s", "min_s", "max_s", "n"} over every rep of every round.
  """
  samples = {i: {"forward": [], "decode": []} for i in implementations}
  records = {}
  seconds = lambda values: "/".join(f"{v:.3g}" for v in values)
  for round_number in range(rounds):
    order = list(implementations)
    if round_number % 2:
      order.reverse()
    for implementation in order:
      spec = Spec(
          implementation, size, batch, reps, budget_s, threads, part=part
      )
      record = run_worker(spec)
      decoded = (
          f"{seconds(record['decode_s'])} s"
          if record["decode_s"]
          else record["skipped_decode"]
      )
      log(
          f"[{size} batch {batch}, round {round_number + 1}/{rounds}] "
          f"{implementation}: forward {seconds(record['forward_s'])} s, "
          f"decode {decoded} (warm-up {record['compile_s']:.1f} s)"
      )
      for kind in ("forward", "decode"):
        samples[implementation][kind] += record[f"{kind}_s"]
      records[implementation] = record
  return {
      "size": size,
      "batch": batch,
      "commit": files.checkout_commit(),
      "model": model_sizes(size),
      **({"flops": part_flops(part, size, batch)} if part != "model" else {}),
      "by_implementation": {
          i: {
              "forward": _summary(samples[i]["forward"]),
              "decode": _summary(samples[i]["decode"]),
              "skipped_decode": records[i]["skipped_decode"],
              "compile_s": records[i]["compile_s"],
              "threads": records[i]["threads"],
              "version": records[i]["version"],
          }
          for i in implementations
      },
  }


def compare(
    sizes: Sequence[str],
    batches: Sequence[int],
    *,
    implementations: Sequence[str] | None = None,
    reps: int = 3,
    rounds: int = 2,
    budget_s: float = 60.0,
    part: str = "model",
    results: dict[str, Any] | None = None,
    on_cell=None,
    log=print,
) -> dict[str, Any]:
  """Times every implementation at every (size, batch) (`measure_cell`).

  Args:
    sizes, batches: the cells, every size at every batch.
    implementations: default every one that can time `part` (`PARTS`).
    reps, rounds, budget_s, part: see the module doc.
    results: earlier results of the same settings, whose cells are kept and
      not measured again (a long comparison resumes).
    on_cell: called with the results after each new cell (to save them).
    log: progress lines.

  Returns:
    {"settings": {...}, "cells": [cell, ...]}.
  """
  if implementations is None:
    implementations = PARTS.get(part, ())
  check(sizes, batches, implementations, part)
  settings = {
      "num_steps": NUM_STEPS,
      "reps": reps,
      "rounds": rounds,
      "budget_s": budget_s,
      "threads": machine.num_cores(),
      # Timings of different CPUs are not comparable: a table resumed on
      # another machine is refused like any other change of settings.
      "cpu": machine.cpu_name(),
      "implementations": list(implementations),
      **({"part": part} if part != "model" else {}),
  }
  if results is None:
    results = {"settings": settings, "cells": []}
  elif results.get("settings") != settings:
    raise ValueError(
        f"The results to resume have other settings ({results.get('settings')}"
        f", now {settings}): use another --out."
    )
  done = {(c["size"], c["batch"]) for c in results["cells"]}
  for size in sizes:
    for batch in batches:
      if (size, batch) in done:
        log(f"[{size} batch {batch}] measured before; kept")
        continue
      results["cells"].append(
          measure_cell(
              size,
              batch,
              implementations=implementations,
              reps=reps,
              rounds=rounds,
              budget_s=budget_s,
              threads=settings["threads"],
              part=part,
              log=log,
          )
      )
      # In the table's order, whichever command measured a cell.
      results["cells"].sort(
          key=lambda c: (list(SIZES).index(c["size"]), c["batch"])
      )
      if on_cell:
        on_cell(results)
  return results


def _best_peer(by_implementation, kind: str):
  """(name, summary) of the faster PyTorch variant at `kind`, if any ran."""
  timed = [
      (by_implementation[p][kind]["median_s"], p)
      for p in PEERS
      if p in by_implementation and by_implementation[p][kind]
  ]
  if not timed:
    return None, None
  _, name = min(timed)
  return name, by_implementation[name][kind]


def _ranged(summary) -> str:
  if summary is None:
    return "-"
  return (
      f"{summary['median_s']:.3g} ({summary['min_s']:.3g}-"
      f"{summary['max_s']:.3g})"
  )


def _speed(ours, theirs) -> str:
  """The peer's median over ours ("-" unless both ran)."""
  if not (ours and theirs):
    return "-"
  return f"{theirs['median_s'] / ours['median_s']:.2f}x"


# What each part's table says it timed.
_PART_TEXT = {
    "gemms": "The matrix products of one forward alone (`peer.gemm_shapes`:"
    " the dense layers and logits, float32, the same shapes in the same order"
    " on both sides)",
    "attention": "The attention of one forward alone (every layer's softmax"
    " attention on projected queries, keys and values, float32: ours"
    " `blocked_attention`, the peer's `scaled_dot_product_attention`)",
}


def _commits_line(cells) -> list[str]:
  """A line naming each cell's commit, where the cells come from several
  (a table resumed or re-measured in part)."""
  by_commit = {}
  for cell in cells:
    by_commit.setdefault(cell.get("commit", "unknown"), []).append(
        f"{cell['size']} batch {cell['batch']}"
    )
  if len(by_commit) < 2:
    return []
  return [
      "",
      "Cells by commit: "
      + "; ".join(f"`{c}`: {', '.join(v)}" for c, v in by_commit.items())
      + ".",
  ]


def part_markdown(results: dict[str, Any]) -> str:
  """The table of a part's comparison: time and GFLOP/s of each side."""
  settings = results["settings"]
  lines = [
      f"{_PART_TEXT[settings['part']]}, seconds: median (range) over"
      f" {settings['rounds']} alternating processes x up to"
      f" {settings['reps']} calls each, {settings['threads']} threads per"
      f" process on {settings['cpu']}. Peer: PyTorch eager; speed > 1: ours"
      " is faster.",
      "",
      "| size | batch | GFLOP | ours | peer | speed | ours GFLOP/s | peer"
      " GFLOP/s |",
      "|---|---|---|---|---|---|---|---|",
  ]
  for cell in results["cells"]:
    by = cell["by_implementation"]
    gflop = cell["flops"] / 1e9
    ours = (by.get("jax") or {}).get("forward")
    theirs = (by.get("torch_eager") or {}).get("forward")
    rate = lambda s: f"{gflop / s['median_s']:.0f}" if s else "-"
    lines.append(
        f"| {cell['size']} | {cell['batch']} | {gflop:.3g} |"
        f" {_ranged(ours)} | {_ranged(theirs)} | {_speed(ours, theirs)} |"
        f" {rate(ours)} |"
        f" {rate(theirs)} |"
    )
  return "\n".join(lines + _commits_line(results["cells"]))


def markdown(results: dict[str, Any]) -> str:
  """The comparison table: medians (ranges) and our speed over the best peer."""
  settings = results["settings"]
  if "part" in settings:
    return part_markdown(results)
  lines = [
      f"Forward and {settings['num_steps']}-step decode (every token "
      "unknown), seconds: median (range) over "
      f"{settings['rounds']} alternating processes x up to "
      f"{settings['reps']} calls each, {settings['threads']} threads per "
      f"process on {settings['cpu']}. Peer: the faster of PyTorch eager and "
      "torch.compile; speed > 1: ours is faster.",
      "",
      "| size | batch | ours forward | peer forward | forward speed | "
      "ours decode | peer decode | decode speed | decode / (steps x "
      "forward), ours / peer |",
      "|---|---|---|---|---|---|---|---|---|",
  ]
  for cell in results["cells"]:
    by = cell["by_implementation"]
    ours = by.get("jax")
    row = [cell["size"], str(cell["batch"])]
    for kind in ("forward", "decode"):
      name, peer = _best_peer(by, kind)
      mine = ours and ours[kind]
      label = f" {name.removeprefix('torch_')}" if name else ""
      row += [_ranged(mine), _ranged(peer) + label, _speed(mine, peer)]
    overhead = []
    for name in ("jax", _best_peer(by, "decode")[0]):
      record = by.get(name) if name else None
      if record and record["decode"] and record["forward"]:
        ratio = record["decode"]["median_s"] / (
            settings["num_steps"] * record["forward"]["median_s"]
        )
        overhead.append(f"{ratio:.2f}")
      else:
        overhead.append("-")
    row.append(" / ".join(overhead))
    lines.append("| " + " | ".join(row) + " |")
  skipped = [
      f"{c['size']} batch {c['batch']} {i}: {r['skipped_decode']}"
      for c in results["cells"]
      for i, r in c["by_implementation"].items()
      if r["skipped_decode"]
  ]
  if skipped:
    lines += ["", "Decodes not run: " + "; ".join(skipped) + "."]
  return "\n".join(lines + _commits_line(results["cells"]))


def _timed_calls(fn, reps: int, budget_s: float) -> tuple[list[float], float]:
  """Wall seconds of up to `reps` calls of fn (which blocks on its work),
  stopping when one more would pass `budget_s`; and CPU / wall seconds.

  A first call shorter than `WARM_UP_S` is not kept: fn is called untimed
  for that long first, since short calls speed up over their first few
  dozen (allocator, caches, thread pools)."""
  start, cpu = time.perf_counter(), time.process_time()
  fn()
  walls = [time.perf_counter() - start]
  if walls[0] < WARM_UP_S:
    while time.perf_counter() - start < WARM_UP_S:
      fn()
    walls, cpu = [], time.process_time()
  while len(walls) < reps and not (walls and sum(walls) + walls[-1] > budget_s):
    start = time.perf_counter()
    fn()
    walls.append(time.perf_counter() - start)
  return walls, (time.process_time() - cpu) / sum(walls)


def time_worker(spec: Spec, forward, decode, version: str) -> dict[str, Any]:
  """The worker's side: warm-up, then the timed forwards and decodes.

  Args:
    spec: the measurement.
    forward, decode: functions that run one call and block on its result
      (for a part other than "model", forward runs the part and decode is
      None).
    version: the implementation's library version.

  Returns:
    The record `compare` reads (printed as the worker's last line).
  """
  start = time.perf_counter()
  forward()
  warmup_s = time.perf_counter() - start
  forward_s, threads = _timed_calls(forward, spec.reps, spec.budget_s)
  projected_s = spec.num_steps * statistics.median(forward_s)
  decode_s, skipped = [], None
  if decode is None:
    skipped = f"not timed (the {spec.part} alone)"
  elif projected_s > spec.budget_s:
    skipped = f"about {projected_s:.0f} s each"
  else:
    start = time.perf_counter()
    decode()
    warmup_s += time.perf_counter() - start
    decode_s, threads = _timed_calls(decode, spec.reps, spec.budget_s)
  return {
      "forward_s": forward_s,
      "decode_s": decode_s,
      "skipped_decode": skipped,
      "compile_s": warmup_s,
      "threads": threads,
      "version": version,
  }
