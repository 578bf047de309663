"""genviral-relay: per-account delivery events from Genviral's polling-only Partner API."""

__version__ = "0.4.0"
