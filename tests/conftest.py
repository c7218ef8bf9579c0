"""Test-wide settings: CPU only, no wandb, no network."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ["WANDB_MODE"] = "disabled"
