"""Files written so that a kill never leaves half of one, and JSON files
read with errors that name them (and compared with what would be written)."""

import contextlib
import json
import os
import subprocess

# The checkout the package runs from: its configs/, scripts/, pretrained/ and
# benchmarks/ (the package is used from a checkout, installed editable).
CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@contextlib.contextmanager
def atomic_path(path: str):
  """Yields a temporary path beside `path` (same extension) that replaces
  `path` when the block ends, so a kill never leaves a half-written file."""
  root, extension = os.path.splitext(path)
  tmp = f"{root}.tmp{extension}"
  try:
    yield tmp
    os.replace(tmp, path)
  except OSError as e:  # A full disk's error names no file.
    raise OSError(e.errno, f"Cannot write {path}: {e.strerror}") from e
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def read_json(path: str | os.PathLike, what: str):
  """The content of JSON file `path`; ValueError naming the `what` file when
  it is not JSON."""
  try:
    with open(path) as f:
      return json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ValueError(f"{what} {path} is not valid JSON: {e}") from e


def _with_defaults(found, defaults):
  """`found` with the fields of `defaults` it lacks, at every depth."""
  if not isinstance(found, dict) or not isinstance(defaults, dict):
    return found
  return {
      **defaults,
      **{k: _with_defaults(v, defaults.get(k)) for k, v in found.items()},
  }


def differing_keys(
    path: str | os.PathLike, content: dict, defaults: dict | None = None
) -> list[str] | None:
  """Top-level keys whose values differ between JSON file `path` and
  `content` (compared as JSON, so tuples equal lists); None if there is no
  such file. `defaults` (shaped like `content`) fills in fields the file
  lacks: those added since it was written, with the values they stand for.
  """
  if not os.path.exists(path):
    return None
  found, content = read_json(path, "File"), json.loads(json.dumps(content))
  if not isinstance(found, dict):
    return sorted(content)
  found = _with_defaults(found, json.loads(json.dumps(defaults or {})))
  return sorted(
      k for k in found.keys() | content.keys() if found.get(k) != content.get(k)
  )


def checkout_commit() -> str:
  """The checkout's short commit hash, which documents written by scripts
  name ("unknown" outside git)."""
  return (
      subprocess.run(
          ["git", "rev-parse", "--short", "HEAD"],
          cwd=CHECKOUT,
          capture_output=True,
          text=True,
          check=False,
      ).stdout.strip()
      or "unknown"
  )


def write_doc(path: str, title: str, commands, body: str) -> str:
  """Writes a markdown document made by `commands` (the command lines that
  measured it) at this commit, atomically; returns its path."""
  made_by = "; ".join(f"`{c}`" for c in commands)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with atomic_path(path) as tmp, open(tmp, "w") as f:
    f.write(
        f"# {title}\n\nWritten by {made_by} at commit "
        f"`{checkout_commit()}`.\n\n{body.rstrip()}\n"
    )
  return path
