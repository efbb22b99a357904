"""The service's configuration, read once from the environment.

=========================  =====================================================
variable                   meaning
=========================  =====================================================
``DATABASE_URL``           the PostgreSQL server; unset: the embedded default
``TOLLGATE_HOME``          where the embedded database, the master key file and
                           the operator key live (default: the user data folder)
``TOLLGATE_MASTER_KEY``    the master keyring: one or more base64url 256-bit keys
                           separated by commas, the first one current
``TOLLGATE_OPERATOR_KEY``  the operator's API key (unset with the embedded
                           default: one is generated and printed once)
``TOLLGATE_EXECUTORS``     executor processes for sandboxed work (default: cores)
=========================  =====================================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Settings"]


def _default_home() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("tollgate", appauthor=False))


@dataclass(frozen=True, kw_only=True)
class Settings:
    """What the service was told. Secrets stay out of ``repr``."""

    database_url: str | None
    home: Path
    master_key: str | None
    operator_key: str | None
    executors: int

    @classmethod
    def from_environment(cls) -> Settings:
        home = os.environ.get("TOLLGATE_HOME")
        executors = os.environ.get("TOLLGATE_EXECUTORS")
        return cls(
            database_url=os.environ.get("DATABASE_URL") or None,
            home=Path(home) if home else _default_home(),
            master_key=os.environ.get("TOLLGATE_MASTER_KEY") or None,
            operator_key=os.environ.get("TOLLGATE_OPERATOR_KEY") or None,
            executors=int(executors) if executors else (os.cpu_count() or 1),
        )

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    def __repr__(self) -> str:
        where = "embedded" if self.embedded else "DATABASE_URL"
        return f"Settings(database={where}, home={self.home}, executors={self.executors})"
