"""A notebook executed headless (nbclient, as nbconvert does) keeps the upload bar's final state, not 0 %."""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]

CELL = """
import trax
config = {
    "storage": {"backend": "memory"}, "blobs": {"backend": "memory"},
    "security": {"secret_key": "nb-progress-" + "x" * 40}, "public_api": {"write_enabled": True},
}
p = trax.connect(config, account="acme")
asset = p.media.upload(b"\\0" * 3_000_000, name="clip.bin")
p.close()
"""


@pytest.mark.slow
def test_upload_bar_ends_at_100_percent_in_saved_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL)])
    NotebookClient(nb, timeout=120, startup_timeout=120, kernel_name="python3").execute()
    outputs = nb.cells[0].outputs
    assert not [o for o in outputs if o.output_type == "error"], outputs
    shown = "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
        for o in outputs
        if o.output_type in ("stream", "display_data", "execute_result")
    )
    bars = re.findall(r"(\d+)%\|", shown)
    assert bars, f"no progress bar in the saved output: {outputs}"
    assert bars[-1] == "100" and "0" not in bars, shown  # the saved bar shows where the upload ended
