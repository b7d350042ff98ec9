"""Real components for the tests: certificates, a token server and a fault-injecting proxy."""

from ocipush.localregistry import free_port

__all__ = ["free_port"]
