"""The workspaces' keys in memory (`checking.ports.WorkspaceKeys`): a map a spec changes between calls, made
malformed by giving it a secret's text (read by the real parser, `aws/secret_forms.py`) or unreadable."""

from __future__ import annotations

from collections.abc import Mapping

from genviral_relay.aws.secret_forms import parse_workspaces
from genviral_relay.checking.ports import TokenSource, WorkspaceKeys
from genviral_relay.errors import TokenUnavailableError
from genviral_relay.models.workspaces import DEFAULT_WORKSPACE

STATIC_KEY = "gva_live_static.0123456789"


class StaticWorkspaceKeys(WorkspaceKeys):
    def __init__(self, keys: Mapping[str, str] | None = None) -> None:
        self.keys: dict[str, str] = dict(keys) if keys is not None else {DEFAULT_WORKSPACE: STATIC_KEY}
        """Each workspace's key: change it between calls as an operator edits the secret."""
        self.error: TokenUnavailableError | None = None
        """What every read raises while set (`secret`, `unreadable`); None: the map is read."""
        self.reads: list[bool] = []
        """Each read's `refresh`."""

    def secret(self, text: str) -> None:
        """The secret now holds `text`: its keys when it is usable, else its configuration error on every read."""
        try:
            self.keys, self.error = parse_workspaces(text), None
        except TokenUnavailableError as error:
            self.error = error

    def unreadable(self, aws_error_code: str = "AccessDeniedException") -> None:
        self.error = TokenUnavailableError("the Genviral secret could not be read", aws_error_code=aws_error_code)

    def read(self, *, refresh: bool = False) -> dict[str, str]:
        self.reads.append(refresh)
        if self.error is not None:
            raise self.error
        return dict(sorted(self.keys.items()))

    def names(self, *, refresh: bool = False) -> tuple[str, ...]:
        return tuple(self.read(refresh=refresh))

    def token_source(self, workspace: str) -> TokenSource:
        return _Token(self, workspace)


class _Token(TokenSource):
    def __init__(self, keys: StaticWorkspaceKeys, workspace: str) -> None:
        self._keys = keys
        self._workspace = workspace

    def token(self, *, refresh: bool = False) -> str:
        token = self._keys.read(refresh=refresh).get(self._workspace)
        if token is None:
            raise TokenUnavailableError(f"the Genviral secret no longer names workspace {self._workspace}")
        return token
