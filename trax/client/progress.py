"""The upload progress bar: a tqdm widget in Jupyter, a text bar elsewhere, and a saved output that is not 0 %.

A widget bar's later values travel as widget messages, which a headless run (nbconvert, nbclient,
papermill) does not write into the notebook: the saved output keeps the text form the bar had when
it was first displayed, ``0%``. So the widget is displayed under a display id and, when the bar
closes, that output is replaced with the bar's final state (``update_display_data``, which both live
frontends and nbclient apply). A live frontend sees no difference.
"""

from __future__ import annotations

from typing import Any

from trax import display


class _RefreshedBar:
    """A ``tqdm.notebook`` bar whose displayed output is rewritten with its final state on close."""

    def __init__(self, bar: Any, handle: Any) -> None:
        self._bar = bar
        self._handle = handle

    def update(self, n: int) -> None:
        self._bar.update(n)

    def close(self) -> None:
        self._bar.close()
        if self._handle is not None:
            self._handle.update(self._bar.container)


def default_progress(total: int, name: str) -> Any:
    """A bar with ``update(n)`` and ``close()`` following ``total`` bytes of ``name``."""
    from tqdm.auto import tqdm  # type: ignore[import-untyped]

    options: dict[str, Any] = {
        "total": total,
        "desc": display.shorten(name, 40),
        "unit": "B",
        "unit_scale": True,
        "unit_divisor": 1024,
    }
    from tqdm.notebook import tqdm_notebook  # type: ignore[import-untyped]

    if not issubclass(tqdm, tqdm_notebook):  # a terminal or a plain script: tqdm's own text bar
        return tqdm(**options)
    from IPython.display import display as ipython_display

    bar = tqdm(display=False, **options)
    handle = ipython_display(bar.container, display_id=True)  # type: ignore[no-untyped-call]
    return _RefreshedBar(bar, handle)
