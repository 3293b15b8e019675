"""What a plugin needs besides the Protocols: the ``hookimpl`` marker and ``Backend`` entries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import pluggy
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from trax.runtime import Runtime

hookimpl = pluggy.HookimplMarker("trax")

T = TypeVar("T")


class NoOptions(BaseModel):
    """Options model for a backend that takes none (unknown keys are refused)."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Backend(Generic[T]):
    """A named implementation a deployment file can choose.

    ``factory(options, runtime)`` builds it from ``options`` (an instance of the
    ``options`` model, validated before the call, so a typo fails at start-up
    with the field's path) and the runtime being built.
    """

    name: str
    factory: Callable[[Any, Runtime], T]
    options: type[BaseModel] = NoOptions
    description: str = ""
    order: int = 100
    """Position in ordered chains (authenticators): lower runs first."""
