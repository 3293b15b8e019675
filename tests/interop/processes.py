"""Client processes of the matrix: start them, stop them (always), and count the frames a reader decoded."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

# Media tokens are JWTs; clients echo their URLs (token included) in errors, which end up in test reports.
_JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")


def redact(text: str) -> str:
    return _JWT.sub("<token>", text)


FRAMES = 30
"""Video frames the reading side must decode for a cell to pass (about 1 s of the 25-30 fps test streams)."""


class Client:
    """One third-party client process; stderr goes to a log file so a failing cell can say why."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str, log: Path) -> None:
        self.proc = proc
        self.name = name
        self.log = log

    def tail(self, chars: int = 400) -> str:
        """Why it failed, in a line: its first error message if any, else its last words; never a token."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        lines = [line for line in text.splitlines() if line.strip()]
        errors = [i for i, line in enumerate(lines) if "error" in line.lower() or "fail" in line.lower()]
        picked = " ".join(lines[errors[0] : errors[0] + 4]) if errors else " ".join(lines)[-chars:]
        return redact(" ".join(picked.split()))[:chars]

    async def stop(self, grace: float = 3.0) -> None:
        """SIGINT first (gst-launch -e sends EOS, whip-client sends its DELETE), then SIGKILL.

        Signals go to the client's whole process group: a shell pipeline (ffmpeg | srt-live-transmit)
        would otherwise leave its members running, and srt-live-transmit reconnects forever.
        """
        if self.proc.returncode is None:
            self._signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                self._signal(signal.SIGKILL)
                await self.proc.wait()
        self._signal(signal.SIGKILL)  # whatever of the group outlived its leader

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)


@contextlib.asynccontextmanager
async def running(cmd: Sequence[str], name: str, workdir: Path, *, stdout: Path | None = None) -> AsyncIterator[Client]:
    log = workdir / f"{name}.log"
    out = stdout.open("wb") if stdout else asyncio.subprocess.DEVNULL
    try:
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=log.open("wb"), start_new_session=True
        )
        client = Client(proc, name, log)
        try:
            yield client
        finally:
            await client.stop()
    finally:
        if stdout and not isinstance(out, int):
            out.close()


async def run(cmd: Sequence[str], name: str, workdir: Path, limit: float) -> tuple[int | None, str, str]:
    """Run to the end (or ``limit`` seconds, then stop it): return code (None when stopped), stdout, stderr tail."""
    log = workdir / f"{name}.log"
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=log.open("wb"),
        start_new_session=True,
    )
    client = Client(proc, name, log)
    assert proc.stdout is not None
    reading = asyncio.ensure_future(proc.stdout.read())
    try:
        await asyncio.wait_for(proc.wait(), limit)
        code: int | None = proc.returncode
    except TimeoutError:
        code = None
    finally:
        await client.stop()
    out = (await reading).decode(errors="replace")
    return code, out, client.tail()


async def ffmpeg_frames(ffmpeg: str, source: str, workdir: Path, name: str, *, limit: float = 25.0) -> int:
    """Video frames ffmpeg decodes from ``source`` (a URL or a file), up to ``FRAMES``; fails with ffmpeg's reason."""
    __tracebackhide__ = True  # its arguments carry the token: pytest would print them with a failure
    cmd = [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-nostats", "-progress", "pipe:1",
        "-i", source, "-map", "0:v:0", "-frames:v", str(FRAMES), "-f", "null", "-",
    ]  # fmt: skip
    code, out, err = await run(cmd, name, workdir, limit)
    frames = [int(line.split("=", 1)[1]) for line in out.splitlines() if line.startswith("frame=")]
    got = frames[-1] if frames else 0
    assert got >= FRAMES, f"ffmpeg decoded {got} frames (exit {code}): {err or 'no error output'}"
    return got


async def gst_frames(gst: str, pipeline: Sequence[str], workdir: Path, name: str, *, limit: float = 25.0) -> int:
    """Frames a gst-launch pipeline ending in ``identity eos-after=FRAMES ! fakesink silent=false`` decoded."""
    __tracebackhide__ = True  # its arguments carry the token: pytest would print them with a failure
    code, out, err = await run([gst, "-v", "-e", *pipeline], name, workdir, limit)
    got = sum(1 for line in out.splitlines() if "last-message = chain" in line)
    assert got >= FRAMES, f"GStreamer decoded {got} frames (exit {code}): {err or redact(out[-400:]) or 'no output'}"
    return got


def decode_tail(gst_pipeline_head: Sequence[str], demux: str) -> list[str]:
    """A reading pipeline: the client's source, then demux, decode H.264, count ``FRAMES`` buffers, stop."""
    return [
        *gst_pipeline_head, "!", demux, "name=d", "d.", "!", "queue", "!", "h264parse", "!", "avdec_h264",
        "!", "identity", f"eos-after={FRAMES}", "!", "fakesink", "silent=false", "sync=false",
    ]  # fmt: skip
