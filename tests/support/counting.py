"""A boto3 client wrapper that counts calls by operation (benchmarks and store contract tests)."""

from __future__ import annotations

from collections import Counter
from typing import Any


class CountingClient:
    def __init__(self, inner: Any, counts: Counter[str]) -> None:
        self._inner = inner
        self._counts = counts

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not callable(attribute) or name in ("get_paginator", "can_paginate"):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self._counts[name] += 1
            return attribute(*args, **kwargs)

        return call
