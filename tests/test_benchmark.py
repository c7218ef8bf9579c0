"""Smoke test of scripts/benchmark.py at its `--quick` sizes (no timing checks)."""

import json
import math
from conftest import load_script


def _load_script():
  return load_script("scripts/benchmark.py")


def _numbers(tree):
  if isinstance(tree, dict):
    for value in tree.values():
      yield from _numbers(value)
  elif isinstance(tree, (list, tuple)):
    for value in tree:
      yield from _numbers(value)
  elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
    yield tree


def test_quick_run_writes_every_section(tmp_path, capsys):
  out = tmp_path / "benchmark.json"
  returned = _load_script().main(
      ["--quick", "--reps", "1", "--batch_sizes", "1", "--out", str(out)]
  )

  results = json.loads(out.read_text())
  assert results == json.loads(json.dumps(returned))
  assert {
      "machine",
      "matmul",
      "tokenizer",
      "transformer",
      "decoding",
      "peak_rss_mb",
  } <= results.keys()
  for record in (
      results["tokenizer"]["train"],
      results["tokenizer"]["inference"],
  ):
    assert {"ms", "images_per_s", "gflop", "mfu"} <= record.keys()
  for record in (
      results["transformer"]["train"],
      results["transformer"]["forward"],
  ):
    assert {"ms", "tokens_per_s", "gflop", "mfu"} <= record.keys()
  (decode,) = results["decoding"]["per_batch"]
  assert decode["batch_size"] == 1
  assert {
      "decode_ms",
      "per_step_ms",
      "forward_ms",
      "loop_overhead",
      "images_per_s",
      "forward_mfu",
  } <= decode.keys()
  # New masks of the same shape reuse the compiled decode program, and the
  # guided variants share one program (at most one compile for the first).
  assert decode["compiles_for_new_masks"] == 0
  guidance = results["decoding"]["guidance"]
  assert set(guidance["variants"]) == {"context", "self_fixed", "iterative"}
  assert guidance["compiles"] <= 1
  assert all(math.isfinite(x) for x in _numbers(results))
  assert results["tokenizer"]["train"]["gflop"] > 0
  assert "| workload |" in capsys.readouterr().out


def test_edit_latency_section_times_full_and_windowed(tmp_path):
  out = tmp_path / "edit_latency.json"
  results = _load_script().main(
      [
          "--edit_latency",
          "runlocal",
          "--reps",
          "1",
          "--areas",
          "0.1,1",
          "--full_pass_every",
          "2",
          "--out",
          str(out),
      ]
  )["edit_latency"]
  assert [row["area"] for row in results["rows"]] == [0.1, 1.0]
  small, whole = results["rows"]
  assert small["edited_tokens"] == 6 and whole["edited_tokens"] == 64
  assert small["window_tokens"] < whole["window_tokens"] == 64
  full = results["full"]
  assert full["min_ms"] <= full["median_ms"] <= full["max_ms"]
  for row in results["rows"]:
    assert set(row["decodes"]) == {"windowed", "windowed_reuse", "full_reuse"}
    assert row["speedups"]["windowed"] > 0
  assert all(math.isfinite(x) for x in _numbers(results))
