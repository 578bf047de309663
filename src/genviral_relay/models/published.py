"""What every document the relay publishes has (`PublishedEvent`), and what those about one workspace add
(`WorkspaceEvent`): the events about posts (`events.py`), the notices about accounts and the relay
(`relay_notices.py`); an endpoint's disabling (`endpoint_notices.py`) is about the deployment, no workspace's."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from genviral_relay.models.workspaces import DEFAULT_WORKSPACE, WorkspaceName


class PublishedEvent(BaseModel):
    """What every document the relay publishes to SNS and EventBridge has: the events about posts (`RelayEvent`)
    and the notices about the relay's own endpoints (`models/endpoint_notices.py`), which the same publishers send."""

    # Serialization mode marks defaulted fields required: every published document carries them.
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_serialization_defaults_required=True)

    schema_version: Literal["1"] = Field(default="1", description="Format version of this document.")
    event_id: str = Field(
        description="Deterministic: the same occurrence always carries the same id. Delivery is at least once: "
        "dedupe on it.",
        json_schema_extra={"format": "uuid"},
    )
    event_type: str
    detected_at: str = Field(
        description="When the relay observed it (ISO-8601 UTC).", json_schema_extra={"format": "date-time"}
    )

    @property
    def detail_type(self) -> str:
        """EventBridge's detail-type."""
        raise NotImplementedError

    def sns_attributes(self) -> dict[str, str]:
        """The SNS message attributes subscribers filter on."""
        return {"event_type": self.event_type}


class WorkspaceEvent(PublishedEvent):
    """A document about one workspace's posts, accounts or key (every published document but an endpoint's disabling,
    which is about the deployment)."""

    # shim: workspace-absent-is-default
    # A document stored by a release without workspaces (in an outbox, the feed, replayed) reads as `default`'s.
    workspace: WorkspaceName = Field(
        default=DEFAULT_WORKSPACE,
        description="The Genviral workspace it is about, as the relay's secret names it: `default` when the secret "
        "holds one key.",
    )

    def sns_attributes(self) -> dict[str, str]:
        return {**super().sns_attributes(), "workspace": self.workspace}
