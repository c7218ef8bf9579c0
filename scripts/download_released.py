"""Downloads the four released MaskGIT ImageNet checkpoints.

Usage:
  python scripts/download_released.py [--out_dir checkpoints/released] [--only maskgit_imagenet256_checkpoint ...]

Each file is written to `<name>.partial` and renamed when complete, so an
interrupted download never leaves a truncated checkpoint under the final name.
`scripts/import_released.py` turns them into run folders that every tool
reads.
"""

import argparse
import os
import sys
import urllib.request

BASE_URL = "https://storage.googleapis.com/maskgit-public/checkpoints"
RELEASED_FILES = (
    "maskgit_imagenet256_checkpoint",
    "maskgit_imagenet512_checkpoint",
    "tokenizer_imagenet256_checkpoint",
    "tokenizer_imagenet512_checkpoint",
)
_CHUNK_BYTES = 1 << 20


def _progress(name: str, done: int, total: int | None) -> None:
  if total:
    width = 40
    filled = width * done // total
    bar = "#" * filled + "." * (width - filled)
    line = f"\r{name}: [{bar}] {done / total:6.1%} of {total / 2**20:.0f} MiB"
  else:
    line = f"\r{name}: {done / 2**20:.0f} MiB"
  sys.stderr.write(line)
  sys.stderr.flush()


def download(name: str, out_dir: str) -> str:
  """Downloads one released file into `out_dir` (skipped if present); returns its path."""
  final_path = os.path.join(out_dir, name)
  if os.path.exists(final_path):
    print(f"{final_path} exists, skipping.")
    return final_path
  partial_path = final_path + ".partial"
  try:
    with (
        urllib.request.urlopen(f"{BASE_URL}/{name}") as response,
        open(partial_path, "wb") as f,
    ):
      total = int(response.headers.get("Content-Length", 0)) or None
      done = 0
      while chunk := response.read(_CHUNK_BYTES):
        f.write(chunk)
        done += len(chunk)
        _progress(name, done, total)
    sys.stderr.write("\n")
    if total is not None and done != total:
      raise IOError(f"{name}: received {done} bytes, expected {total}.")
  except BaseException:
    if os.path.exists(partial_path):
      os.remove(partial_path)
    raise
  os.replace(partial_path, final_path)
  return final_path


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out_dir", default="checkpoints/released")
  parser.add_argument(
      "--only",
      nargs="+",
      choices=RELEASED_FILES,
      default=RELEASED_FILES,
      help="Subset of files to fetch (default: all four).",
  )
  args = parser.parse_args()
  os.makedirs(args.out_dir, exist_ok=True)
  for name in args.only:
    print(download(name, args.out_dir))


if __name__ == "__main__":
  main()
