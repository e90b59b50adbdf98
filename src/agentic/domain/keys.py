"""An API key as the application sees it (never the key itself: only its owner and lifetime)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ApiKey:
    id: str
    user_id: str
    label: str | None
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


__all__ = ["ApiKey"]
