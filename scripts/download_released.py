"""Downloads the four released MaskGIT ImageNet checkpoints.

Usage:
  python scripts/download_released.py [--out_dir checkpoints/released] [--only maskgit_imagenet256_checkpoint ...]

Each file is written to `<name>.partial` and renamed when complete, so an
interrupted download never leaves a truncated checkpoint under the final name.
`scripts/import_released.py` turns them into run folders that every tool
reads.
"""

import os
import sys
import urllib.request

# Runs from a checkout without installing.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
from maskgit_edit import cli
from maskgit_edit import progress as progress_lib

BASE_URL = "https://storage.googleapis.com/maskgit-public/checkpoints"
RELEASED_FILES = (
    "maskgit_imagenet256_checkpoint",
    "maskgit_imagenet512_checkpoint",
    "tokenizer_imagenet256_checkpoint",
    "tokenizer_imagenet512_checkpoint",
)
_CHUNK_BYTES = 1 << 20


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
      # Progress in MiB, a line every 5% (every 50 MiB of unknown lengths).
      progress = progress_lib.Progress(
          total and -(-total // _CHUNK_BYTES), unit="MiB", stream=sys.stderr
      )
      report_every = max(1, progress.total // 20) if total else 50
      done = 0
      while chunk := response.read(_CHUNK_BYTES):
        f.write(chunk)
        done += len(chunk)
        progress.done += 1
        if progress.done % report_every == 0:
          progress.report(name)
      progress.report(f"{name}: done")
    if total is not None and done != total:
      raise IOError(f"{name}: received {done} bytes, expected {total}.")
  except BaseException:
    if os.path.exists(partial_path):
      os.remove(partial_path)
    raise
  os.replace(partial_path, final_path)
  return final_path


def main() -> None:
  parser = cli.ArgumentParser(description=__doc__.splitlines()[0])
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
