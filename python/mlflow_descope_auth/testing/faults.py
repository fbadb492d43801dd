"""Fault injection for the Descope emulator: per-endpoint errors, hangs, dropped connections."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Optional, Union

logger = logging.getLogger(__name__)

FaultBody = Union[dict[str, Any], list[Any], str, bytes]


@dataclass(frozen=True)
class Fault:
    """What an endpoint does instead of answering normally.

    Order of effects: hang first (bounded), then drop the connection when
    `close`, else answer `status` (503 after a hang with no status).
    """

    status: Optional[int] = None
    retry_after: Optional[int] = None
    hang: Optional[float] = None
    close: bool = False
    body: Optional[FaultBody] = None
    content_type: Optional[str] = None


class FaultTable:
    """Faults per endpoint, each optionally limited to its next N calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, tuple[Fault, Optional[int]]] = {}
        self._release = threading.Event()

    def set(self, endpoint: str, fault: Fault, times: Optional[int]) -> None:
        with self._lock:
            self._faults[endpoint] = (fault, times)

    def take(self, endpoint: str) -> tuple[Optional[Fault], threading.Event]:
        """The fault for this call (spending one of its `times`) and the hang-release event."""
        with self._lock:
            entry = self._faults.get(endpoint)
            if entry is None:
                return None, self._release
            fault, times = entry
            if times is not None:
                if times <= 1:
                    del self._faults[endpoint]
                else:
                    self._faults[endpoint] = (fault, times - 1)
            return fault, self._release

    def clear(self) -> None:
        """Remove every fault and release the requests hanging now."""
        with self._lock:
            self._faults.clear()
            released, self._release = self._release, threading.Event()
        released.set()

    def release_all(self) -> None:
        """Release hanging requests for good (the server is stopping)."""
        with self._lock:
            self._faults.clear()
            self._release.set()
