"""One Transport per registry host for the duration of an operation, closed together at the end."""

from __future__ import annotations

import threading
from types import TracebackType

from ocipush.reference import Reference
from ocipush.registry.client import RegistryClient
from ocipush.registry.options import RegistryOptions
from ocipush.registry.transport import Transport


class RegistrySession:
    def __init__(self, options: RegistryOptions | None = None) -> None:
        self.options = options or RegistryOptions.from_env()
        self._transports: dict[str, Transport] = {}
        self._lock = threading.Lock()

    def transport(self, host: str) -> Transport:
        with self._lock:
            transport = self._transports.get(host)
            if transport is None:
                transport = self._transports[host] = Transport(host, self.options)
            return transport

    def client(self, reference: Reference) -> RegistryClient:
        return RegistryClient(self.transport(reference.api_host), reference.repository)

    def close(self) -> None:
        with self._lock:
            for transport in self._transports.values():
                transport.close()
            self._transports.clear()

    def __enter__(self) -> RegistrySession:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()
