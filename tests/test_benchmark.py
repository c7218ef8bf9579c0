"""Smoke tests of scripts/benchmark.py at its `--quick` sizes and of the
process-isolated peer comparison (no timing checks)."""

import json
import math
import time

import numpy as np
import pytest

from maskgit_edit import files
from maskgit_edit.benchmarking import edit_latency
from maskgit_edit.benchmarking import machine
from maskgit_edit.benchmarking import peer

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
          "--num_steps",
          "6",
          "--start_iter",
          "1",
          "--matmul_dtype",
          "bfloat16",
          "--out",
          str(out),
      ]
  )["edit_latency"]
  assert (results["num_steps"], results["start_iter"]) == (6, 1)
  header = edit_latency.edit_latency_markdown(results).splitlines()[0]
  assert "bfloat16 products" in header and " cores of " in header
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


def test_peer_comparison_runs_each_implementation_in_its_own_process():
  lines = []
  settings = dict(implementations=("jax",), reps=2, rounds=2, budget_s=30.0)
  results = peer.compare(["reference"], [2], log=lines.append, **settings)
  (cell,) = results["cells"]
  record = cell["by_implementation"]["jax"]
  assert record["forward"]["n"] == record["decode"]["n"] == 4
  assert record["forward"]["min_s"] <= record["forward"]["median_s"]
  assert record["decode"]["median_s"] <= record["decode"]["max_s"]
  assert len(lines) == 2 and "round 2/2" in lines[1]
  assert "| reference | 2 |" in peer.markdown(results)
  # The table names its CPU; a table of another machine does not resume.
  assert results["settings"]["cpu"] == machine.cpu_name()
  assert f"per process on {machine.cpu_name()}." in peer.markdown(results)
  elsewhere = dict(
      results, settings=dict(results["settings"], cpu="another CPU")
  )
  with pytest.raises(ValueError, match="other settings"):
    peer.compare(["reference"], [2], results=elsewhere, **settings)
  # Each cell names its commit; the table lists them where they differ.
  assert cell["commit"] == files.checkout_commit()
  assert "Cells by commit" not in peer.markdown(results)
  mixed = dict(results, cells=[cell, dict(cell, batch=3, commit="0ld0ne")])
  assert peer.markdown(mixed).endswith(
      f"Cells by commit: `{cell['commit']}`: reference batch 2;"
      " `0ld0ne`: reference batch 3."
  )
  # A second run keeps the measured cell; other settings are refused.
  again = peer.compare(
      ["reference"], [2], results=results, log=lines.append, **settings
  )
  assert again is results and lines[-1].endswith("measured before; kept")
  with pytest.raises(ValueError, match="other settings"):
    peer.compare(
        ["reference"],
        [2],
        results=results,
        log=lines.append,
        **dict(settings, reps=1),
    )


def test_short_calls_are_warmed_up_before_they_are_timed(monkeypatch):
  monkeypatch.setattr(peer, "WARM_UP_S", 0.05)
  calls = []
  walls, _ = peer._timed_calls(lambda: calls.append(1), reps=3, budget_s=9)
  # The probe and >= 0.05 s of untimed calls, then 3 timed ones.
  assert len(walls) == 3 and len(calls) > 10
  calls.clear()
  slow = lambda: calls.append(time.sleep(0.06))
  walls, _ = peer._timed_calls(slow, reps=3, budget_s=9)
  # A call longer than the warm-up is timed from the first.
  assert len(walls) == len(calls) == 3 and min(walls) >= 0.06


def test_the_gemm_comparison_times_the_forwards_matrix_products():
  results = peer.compare(
      ["reference"],
      [2],
      implementations=("jax",),
      reps=2,
      rounds=1,
      budget_s=30.0,
      part="gemms",
      log=lambda line: None,
  )
  (cell,) = results["cells"]
  record = cell["by_implementation"]["jax"]
  assert record["forward"]["n"] == 2 and record["decode"] is None
  assert cell["flops"] == peer.gemm_flops("reference", 2)
  (row,) = [
      r for r in peer.markdown(results).splitlines() if "| reference" in r
  ]
  gflop_per_s = cell["flops"] / 1e9 / record["forward"]["median_s"]
  assert row.endswith(f"| {gflop_per_s:.0f} | - |")


def test_the_jax_gemm_chain_does_every_flop_of_its_shapes():
  """XLA's own count of the compiled chain: nothing trimmed or reordered."""
  import jax  # pylint: disable=g-import-not-at-top
  from maskgit_edit.benchmarking import jax_worker  # pylint: disable=g-import-not-at-top

  for size in ("reference", "8x512"):
    shapes = peer.gemm_shapes(size)
    rows = 3 * peer.model_sizes(size)["seq_len"]
    args = (
        jax.ShapeDtypeStruct((rows, shapes[0][0]), np.float32),
        [jax.ShapeDtypeStruct(shape, np.float32) for shape in shapes],
    )
    compiled = jax.jit(jax_worker.chain_products).lower(*args).compile()
    flops = compiled.cost_analysis()["flops"]
    np.testing.assert_allclose(flops, peer.gemm_flops(size, 3), rtol=1e-3)


def test_the_jax_attention_chain_is_every_layers_softmax_attention():
  import jax  # pylint: disable=g-import-not-at-top
  from maskgit_edit.benchmarking import jax_worker  # pylint: disable=g-import-not-at-top

  keys = jax.random.split(jax.random.key(0), 3)
  query, key, value = (jax.random.normal(k, (2, 65, 4, 8)) for k in keys)
  expected = query
  for _ in range(3):
    expected = jax.nn.dot_product_attention(expected, key, value)
  np.testing.assert_allclose(
      jax_worker.chain_attention(query, key, value, 3), expected, atol=1e-5
  )


def test_the_attention_flops_are_its_score_and_value_products():
  """XLA's count of one layer's two products, times the layers."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  def products(q, k, v):
    scores = jnp.einsum("bqnd,blnd->bnql", q, k)
    return jnp.einsum("bnql,blnd->bqnd", scores, v)

  for size in ("reference", "imagenet256"):
    m = peer.model_sizes(size)
    heads = m["num_heads"]
    shape = (3, m["seq_len"], heads, m["hidden_size"] // heads)
    arg = jax.ShapeDtypeStruct(shape, np.float32)
    compiled = jax.jit(products).lower(arg, arg, arg).compile()
    flops = compiled.cost_analysis()["flops"] * m["num_layers"]
    np.testing.assert_allclose(flops, peer.attention_flops(size, 3), rtol=1e-3)


@pytest.mark.parametrize("part", ["gemms", "attention"])
def test_a_part_runs_on_both_sides_in_their_own_processes(part):
  pytest.importorskip("torch")
  results = peer.compare(
      ["reference"], [1], reps=1, rounds=1, part=part, log=lambda line: None
  )
  (cell,) = results["cells"]
  assert set(cell["by_implementation"]) == {"jax", "torch_eager"}
  assert cell["by_implementation"]["torch_eager"]["forward"]["n"] == 1
  assert cell["flops"] == peer.part_flops(part, "reference", 1)
  assert results["settings"]["part"] == part


def test_the_gemm_shapes_are_every_weight_matrix_of_the_transformer():
  """Their K x N sum to the kernels' parameters plus the word embeddings
  (the logits): the chain has the FLOPs of the forward's dense layers."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from maskgit_edit.benchmarking import jax_worker  # pylint: disable=g-import-not-at-top

  for size in ("reference", "8x512"):
    m = peer.model_sizes(size)
    model = jax_worker.transformer(m)
    shapes = jax.eval_shape(
        model.init, jax.random.key(0), jnp.zeros((1, m["seq_len"]), jnp.int32)
    )["params"]
    matrices = sum(
        np.prod(leaf.shape)
        for path, leaf in jax.tree_util.tree_leaves_with_path(shapes)
        if "kernel" in jax.tree_util.keystr(path)
    )
    matrices += m["vocab_size"] * m["hidden_size"]
    assert sum(k * n for k, n in peer.gemm_shapes(size)) == matrices


@pytest.mark.parametrize(
    "sizes, batches, implementations, message",
    [
        (["huge"], [1], ("jax",), "Unknown size 'huge'"),
        (["imagenet512"], [10**6], ("jax",), "use a smaller batch"),
        (["reference"], [0], ("jax",), "Batch sizes must be >= 1"),
        (["reference"], [1], ("mxnet",), "Unknown implementation 'mxnet'"),
    ],
)
def test_peer_comparison_refuses_cells_that_cannot_run(
    sizes, batches, implementations, message
):
  with pytest.raises(ValueError, match=message):
    peer.check(sizes, batches, implementations)


@pytest.mark.parametrize("part", ["gemms", "attention"])
def test_a_part_comparison_refuses_torch_compile(part):
  with pytest.raises(ValueError, match=f"With --{part}.*jax,torch_eager"):
    peer.check(["reference"], [1], ("jax", "torch_compile"), part=part)


def test_peer_comparison_refuses_an_unknown_part():
  with pytest.raises(ValueError, match="Unknown part 'softmax'"):
    peer.check(["reference"], [1], ("jax",), part="softmax")


def test_peer_comparison_without_torch_says_what_to_install(monkeypatch):
  monkeypatch.setattr(peer.importlib.util, "find_spec", lambda name: None)
  with pytest.raises(ValueError, match=r"pip install -e '\.\[peer\]'"):
    peer.check(["reference"], [1], ("jax", "torch_eager"))


def test_compile_counter_counts_programs_loaded_from_the_persistent_cache():
  """The tests turn XLA's persistent cache on: it serves a program again,
  and the compile counter still counts it (so "never recompiles" holds)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from maskgit_edit.benchmarking import timing  # pylint: disable=g-import-not-at-top

  hits = []
  record_hit = lambda event, **kwargs: hits.append(event)
  f = jax.jit(lambda x: jnp.cumsum(x * 3.0 + 1.0))
  x = np.arange(7, dtype=np.float32)  # No program builds it.
  minimum = jax.config.jax_persistent_cache_min_compile_time_secs
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
  jax.monitoring.register_event_listener(record_hit)
  try:
    with timing.CompileCounter() as counter:
      f(x).block_until_ready()
      jax.clear_caches()  # Only the persistent cache can serve it now.
      f(x).block_until_ready()
  finally:
    jax.config.update("jax_persistent_cache_min_compile_time_secs", minimum)
    jax.monitoring.unregister_event_listener(record_hit)
  assert "/jax/compilation_cache/cache_hits" in hits
  assert counter.count == 2
