"""The edit page under load: concurrent clients against a page of its own
(`scripts/load_page.py`).

Starts `python -m maskgit_edit.app --port 0` (the committed models, or a
run), then N client threads send edits (a painted square on a held-out
test image, each with its own seed) until `requests` have been sent or
`max_seconds` have passed; with `mixed` every third request is a hostile
one of the page's refusals instead (an over-size body, a foreign Origin, a
decompression bomb, a non-integer field; `maskgit_edit.app`). Reports the
requests served, p50/p95 latency of the edits, answers by status, the
server's peak resident memory (VmHWM) and the tracebacks it printed, then
stops the server.
"""

import base64
import collections
import http.client
import io
import json
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
from PIL import Image

from maskgit_edit import app
from maskgit_edit import files

START_TIMEOUT_S = 600
REQUEST_TIMEOUT_S = 600


def start_server(run: str | None, log) -> tuple[subprocess.Popen, int]:
  """The page in its own process (stderr to the file `log`), and the port
  it bound."""
  command = [sys.executable, "-m", "maskgit_edit.app", "--port=0"]
  if run:
    command.append(f"--run={run}")
  server = subprocess.Popen(
      command, cwd=files.CHECKOUT, stdout=subprocess.PIPE, stderr=log, text=True
  )
  deadline = time.monotonic() + START_TIMEOUT_S
  for line in server.stdout:
    if line.startswith("Serving the edit page on"):
      return server, int(line.split(":")[2].split("/")[0])
    if time.monotonic() > deadline:
      break
  server.kill()
  raise RuntimeError(f"The page did not start (exit {server.wait()}).")


def _png(image) -> str:
  buffer = io.BytesIO()
  Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format="PNG")
  return base64.b64encode(buffer.getvalue()).decode()


def request_kinds(port: int, source_png: str, size: int) -> dict:
  """name -> (path, headers, body); body None: headers only."""
  host = {"Host": f"127.0.0.1:{port}", "Content-Type": "application/json"}
  layer = np.zeros((size, size, 4), np.uint8)
  layer[size // 4 : size // 2, size // 4 : size // 2] = (230, 230, 230, 255)
  edit = {"source": source_png, "layer": _png(layer), "variant": "self_fixed"}
  bomb = io.BytesIO()
  Image.new("L", (6000, 6000)).save(bomb, format="PNG")
  return {
      "edit": ("/api/edit", host, edit),
      "oversize": (
          "/api/edit",
          {**host, "Content-Length": str(app.MAX_REQUEST_BYTES + 1)},
          None,
      ),
      "foreign_origin": (
          "/api/edit",
          {**host, "Origin": "http://evil.example"},
          edit,
      ),
      "bomb": (
          "/api/source",
          host,
          {"kind": "upload", "png": base64.b64encode(bomb.getvalue()).decode()},
      ),
      "bad_field": ("/api/source", host, {"kind": "test", "index": "x"}),
  }


def send(port: int, method: str, path: str, headers: dict, body=None):
  """One request on its own connection: (status, answer bytes). A POST
  without body sends its headers only (the server must answer unread)."""
  connection = http.client.HTTPConnection(
      "127.0.0.1", port, timeout=REQUEST_TIMEOUT_S
  )
  try:
    if method == "POST" and body is None:
      connection.putrequest(method, path, skip_host=True)
      for key, value in headers.items():
        connection.putheader(key, value)
      connection.endheaders()
    else:
      connection.request(
          method, path, None if body is None else json.dumps(body), headers
      )
    response = connection.getresponse()
    return response.status, response.read()
  finally:
    connection.close()


def peak_rss_mib(pid: int) -> float | None:
  """VmHWM of a process in MiB (Linux), None elsewhere."""
  try:
    with open(f"/proc/{pid}/status") as f:
      for line in f:
        if line.startswith("VmHWM:"):
          return int(line.split()[1]) / 1024
  except OSError:
    pass
  return None


def run_load(
    port: int, *, clients: int, requests: int, max_seconds: float, mixed: bool
) -> dict:
  """Sends the requests from --clients threads; the counts and latencies."""
  info = json.loads(send(port, "GET", "/api/info", {})[1])
  source = json.loads(
      send(port, "POST", "/api/source", {}, {"kind": "test", "index": 0})[1]
  )
  kinds = request_kinds(port, source["png"], info["image_size"])
  hostile = [name for name in kinds if name != "edit"]
  lock = threading.Lock()
  next_index = [0]
  statuses = collections.Counter()
  by_kind = collections.defaultdict(collections.Counter)
  edit_latencies = []
  deadline = time.monotonic() + max_seconds

  def client():
    while time.monotonic() < deadline:
      with lock:
        i = next_index[0]
        if i >= requests:
          return
        next_index[0] += 1
      name = (
          hostile[(i // 3) % len(hostile)] if mixed and i % 3 == 2 else "edit"
      )
      path, headers, body = kinds[name]
      if name == "edit":
        body = {**body, "seed": i}
      start = time.monotonic()
      try:
        status = send(port, "POST", path, headers, body)[0]
      except OSError as e:
        status = f"no answer ({type(e).__name__})"
      with lock:
        statuses[status] += 1
        by_kind[name][status] += 1
        if name == "edit":
          edit_latencies.append(time.monotonic() - start)

  start = time.monotonic()
  threads = [threading.Thread(target=client) for _ in range(clients)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  latencies = np.array(edit_latencies)
  return {
      "clients": clients,
      "mixed": mixed,
      "sent": sum(statuses.values()),
      "seconds": time.monotonic() - start,
      "statuses": {str(k): v for k, v in sorted(statuses.items(), key=str)},
      "by_kind": {
          k: {str(s): n for s, n in v.items()} for k, v in by_kind.items()
      },
      "edit_p50_s": float(np.median(latencies)) if len(latencies) else None,
      "edit_p95_s": (
          float(np.percentile(latencies, 95)) if len(latencies) else None
      ),
  }


def load_test(
    run: str | None,
    *,
    clients: int = 16,
    requests: int = 160,
    max_seconds: float = 600.0,
    mixed: bool = False,
) -> dict:
  """Starts the page (the committed models, or `run`), loads it, stops it;
  returns the report (see the module doc)."""
  with tempfile.TemporaryFile("w+") as log:
    server, port = start_server(run, log)
    try:
      report = run_load(
          port,
          clients=clients,
          requests=requests,
          max_seconds=max_seconds,
          mixed=mixed,
      )
      report["server_peak_rss_mib"] = peak_rss_mib(server.pid)
    finally:
      server.terminate()
      server.wait(timeout=60)
    log.seek(0)
    # Tracebacks the server printed: failed requests or dropped connections.
    report["server_tracebacks"] = log.read().count("Traceback")
  return report
