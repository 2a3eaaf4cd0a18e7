"""Object-storage resources: a bucket interface, a local folder and Google Cloud Storage."""

from __future__ import annotations

from abc import abstractmethod

from dagster import ConfigurableResource


class Bucket(ConfigurableResource):
    """Flat key -> bytes storage where a written object appears whole or not at all."""

    @abstractmethod
    def write_bytes(self, key: str, data: bytes) -> str:
        """Write one object atomically and return its URI."""

    @abstractmethod
    def read_bytes(self, key: str) -> bytes:
        """The bytes of one object; `FileNotFoundError` naming the URI when it is absent."""

    @abstractmethod
    def list_keys(self, prefix: str) -> list[str]:
        """Every key that starts with `prefix`, sorted."""

    @abstractmethod
    def uri(self, key: str) -> str:
        """Where the object with `key` lives (`file://...` or `gs://...`)."""

    def exists(self, key: str) -> bool:
        """Whether an object with `key` exists."""
        return key in self.list_keys(key)
