"""What the web app shares between requests, and the one typed way to reach it."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from crm_core.blobs import BlobStore
from crm_core.config import Settings
from crm_core.ingestion.inbox import Inbox

_KEY = "crm"


@dataclass(frozen=True)
class CrmState:
    """Settings, the database, the inbox writer and the attachments' blob store of one app."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    inbox: Inbox
    blobs: BlobStore


def init_state(app: Flask, state: CrmState) -> None:
    """Attach ``state`` to ``app``; ``crm_state()`` finds it during a request."""
    app.extensions[_KEY] = state


def crm_state() -> CrmState:
    """The state of the app handling the current request."""
    state: CrmState = current_app.extensions[_KEY]
    return state
