"""Downloading the Inception weights (gan_cli/metrics/inception.py) from a small HTTP server on
127.0.0.1: a good file is accepted, a wrong digest refused, a partial file never used; and gan-eval
on default metrics whose weights cannot be had computes the rest. No test reaches the real URL
(conftest.py points $GAN_CLI_INCEPTION_URL at a closed local port)."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading

import pytest
import torch

from gan_cli.metrics.inception import (
    MissingWeightsError,
    download_weights,
    expected_digest,
    hub_cache_path,
    inception_weights_filename,
    resolve_inception_weights,
)
from tests.conftest import SMALL, run_cli

PAYLOAD = b"not really Inception weights, but bytes with a known digest\n" * 1000
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        self.server.requests.append(self.path)
        if "partial" in self.path:  # announces the whole file, sends half, hangs up
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_digest_from_the_file_name_by_torch_hubs_convention():
    assert expected_digest("https://x/weights-inception-2015-12-05-6726825d.pth") == "6726825d"
    assert expected_digest("https://x/w.pth") is None
    assert expected_digest("https://x/w.pth", "ABC123") == "abc123"


def test_good_file_is_downloaded_into_the_hub_cache(server, tmp_path, monkeypatch):
    httpd, base = server
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    url = f"{base}/weights-{DIGEST[:8]}.pth"  # the digest read from the name, as for the real file
    got = resolve_inception_weights(None, url=url)
    assert got == hub_cache_path() and got.name == inception_weights_filename()
    assert got.read_bytes() == PAYLOAD
    assert [p.name for p in got.parent.iterdir()] == [got.name]  # no .partial left behind
    assert resolve_inception_weights(None, url=url) == got and len(httpd.requests) == 1  # cached


def test_full_digest_setting_is_checked(server, tmp_path):
    _, base = server
    dst = tmp_path / "w.pth"
    assert download_weights(f"{base}/w.pth", dst, sha256=DIGEST) == dst and dst.read_bytes() == PAYLOAD


def test_wrong_digest_is_refused_and_nothing_is_written(server, tmp_path, monkeypatch):
    _, base = server
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError, match="invalid hash value") as err:
        resolve_inception_weights(None, url=f"{base}/weights-deadbeef.pth")
    assert str(hub_cache_path()) in str(err.value)  # says where to put the file
    assert not hub_cache_path().exists() and list(hub_cache_path().parent.iterdir()) == []
    with pytest.raises(MissingWeightsError, match="no SHA-256"):  # nothing to check against
        download_weights(f"{base}/w.pth", tmp_path / "w.pth")
    assert not (tmp_path / "w.pth").exists()


def test_partial_download_is_never_used(server, tmp_path, monkeypatch):
    _, base = server
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    for _ in range(2):  # a second try after the first failed is refused the same way
        with pytest.raises(MissingWeightsError):
            resolve_inception_weights(None, url=f"{base}/partial-{DIGEST[:8]}.pth")
        assert not hub_cache_path().exists() and list(hub_cache_path().parent.iterdir()) == []


def test_offline_message_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError) as err:  # conftest's URL: a closed port
        resolve_inception_weights(None)
    msg = str(err.value)
    assert "could not download" in msg and str(hub_cache_path()) in msg and "inception_weights=PATH" in msg
    with pytest.raises(MissingWeightsError, match="allow_download=true"):
        resolve_inception_weights(None, allow_download=False)


def run_eval(args: list[str], run_dir, cwd, env: dict):
    """gan-eval with ``args`` into ``run_dir``, run in this process."""
    return run_cli(args, run_dir, prog="gan-eval", cwd=cwd, env=env, in_process=True)


@pytest.mark.slow
def test_eval_defaults_skip_what_needs_missing_weights(tmp_path):
    """On an RGB folder with no weights and no network: gan-eval computes nn, says in one line that
    fid, is, kid, pr were skipped and why, and exits 0; fid asked for by name exits 1."""
    from torchvision.utils import save_image

    folder = tmp_path / "rgb"
    folder.mkdir()
    g = torch.Generator().manual_seed(0)
    for i in range(40):
        save_image(torch.rand(3, 16, 16, generator=g), folder / f"{i:02d}.png")
    args = [a for a in SMALL if not a.startswith(("dataset=", "model=", "metrics."))]
    proc = run_cli([*args, "dataset=image_folder", f"dataset.path={folder}", "dataset.resolution=16",
                    "dataset.channels=3", "dataset.in_memory=true", "model=dcgan",
                    "model.generator.width=8", "model.discriminator.width=8", "train.steps=2"],
                   tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = tmp_path / "run" / "checkpoints" / "last.pt"
    common = [f"ckpt={ckpt}", "num_samples=16", "num_real=16", "batch_size=8", "sweep_columns=0"]
    # in this process: torch.hub reads TORCH_HOME at each call (hub_cache_path), and the environment
    # is restored after the command
    env = {"TORCH_HOME": str(tmp_path / "torch_home"), "GAN_CLI_CACHE": str(tmp_path / "cache")}
    proc = run_eval(common, tmp_path / "eval", tmp_path, env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("skipped ")]
    assert len(lines) == 1 and "fid, is, kid, pr" in lines[0] and "could not download" in lines[0]
    result = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert set(result["metrics"]) == {"nn_distance_min", "nn_distance_mean"}
    assert set(result["skipped"]) == {"fid", "is", "kid", "pr"}
    proc = run_eval([*common, "metrics=[fid]"], tmp_path / "eval_fid", tmp_path, env)
    assert proc.returncode == 1 and inception_weights_filename() in proc.stderr
