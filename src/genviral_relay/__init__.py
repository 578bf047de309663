"""genviral-relay: per-account delivery events from Genviral's polling-only Partner API."""
