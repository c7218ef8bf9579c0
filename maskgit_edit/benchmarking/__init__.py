"""Speed measurement: timing primitives (`timing`), and the comparison with
the PyTorch peer, each implementation in its own process (`peer`,
`jax_worker`, and `benchmarks/torch_worker.py` in the checkout)."""
