"""Execution limits: one definition, used by the sandbox, the API, the CLI and the store.

Every limit applies to one execution (one handler call in one fresh sandbox).
Names carry their units. Operators set per-tenant values between 1 and the
platform maximum; tenants see the values in force in every result's stats.

========================  ===============  ================  ===========================================
limit                     default          platform maximum  what happens when it is hit
========================  ===============  ================  ===========================================
``fuel``                  1,000,000,000    50,000,000,000    ``action_timeout`` (WebAssembly instructions)
``wall_ms``               5,000            20,000            ``action_timeout`` (wall clock)
``memory_bytes``          32 MiB           256 MiB           ``action_memory`` (the sandbox's memory)
``stack_bytes``           160 KiB          192 KiB           ``RangeError`` in the action, catchable
``output_bytes``          256 KiB          4 MiB             ``action_limit`` (recorded commands)
``log_bytes``             256 KiB          4 MiB             ``action_limit`` (console output)
``max_commands``          1,000            10,000            ``action_limit``
``max_host_calls``        32               1,000             ``action_limit``
========================  ===============  ================  ===========================================

Fuel is a deterministic budget: the same action with the same event uses
the same fuel on every machine. On the machines this was measured on, a
billion instructions is about 70 ms of pure computation; the login actions
we ship use under a million. The wall clock bounds everything else.

The stack is the one limit an action can observe and recover from, as in
Node: deep recursion raises ``RangeError: Maximum call stack size exceeded``.
A JavaScript call takes about 320 bytes of it, so the default allows about
500 nested calls and the maximum about 600. The maximum is bounded by the
engine's 256 KiB shadow stack, which sits first in the sandbox's memory so
that an overflow traps instead of corrupting the heap.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, Self

__all__ = ["PLATFORM_MAXIMUMS", "KiB", "Limits", "LimitsError", "MiB"]

KiB = 1024
MiB = 1024 * KiB


class LimitsError(ValueError):
    """A limit is unknown, not a whole number, or outside 1..platform maximum."""


class _WholeNumbers:
    """What both sets of limits share: whole numbers from 1, checked against maximums."""

    __slots__ = ()

    def __post_init__(self) -> None:
        for name in self.names():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise LimitsError(f"{name} must be a whole number, not {value!r}")
            if value < 1:
                raise LimitsError(f"{name} must be at least 1")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        # Read on every execution (checks, wire format): worked out once per class.
        names: tuple[str, ...] | None = cls.__dict__.get("_names")
        if names is None:
            names = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
            cls._names = names  # type: ignore[attr-defined]
        return names

    def within(self, maximums: Self) -> Self:
        """Check every value against `maximums`; returns self."""
        for name in self.names():
            if getattr(self, name) > getattr(maximums, name):
                raise LimitsError(f"{name} may be at most {getattr(maximums, name):,}")
        return self

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.names()}


@dataclass(frozen=True, kw_only=True, slots=True)
class Limits(_WholeNumbers):
    """The limits of one execution. Immutable; :meth:`replace` derives new ones."""

    fuel: int = 1_000_000_000
    wall_ms: int = 5_000
    memory_bytes: int = 32 * MiB
    stack_bytes: int = 160 * KiB
    output_bytes: int = 256 * KiB
    log_bytes: int = 256 * KiB
    max_commands: int = 1_000
    max_host_calls: int = 32

    def replace(self, **changes: Any) -> Limits:
        """These limits with some values changed; unknown names are refused."""
        unknown = set(changes) - set(self.names())
        if unknown:
            raise LimitsError(f"unknown limit: {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)


PLATFORM_MAXIMUMS = Limits(
    fuel=50_000_000_000,
    wall_ms=20_000,
    memory_bytes=256 * MiB,
    stack_bytes=192 * KiB,
    output_bytes=4 * MiB,
    log_bytes=4 * MiB,
    max_commands=10_000,
    max_host_calls=1_000,
)


@dataclass(frozen=True, kw_only=True, slots=True)
class Quotas(_WholeNumbers):
    """Per-tenant quotas, set by operators beside the execution limits.

    ``max_actions`` actions per tenant; ``max_concurrent_executions`` at once
    (past it a login fails with ``resource_exhausted``, as in the hosted
    product); ``max_code_bytes`` per action's source (past it: HTTP 413);
    ``execution_retention_days`` for which execution records are kept.
    """

    max_actions: int = 100
    max_concurrent_executions: int = 50
    max_code_bytes: int = 100 * KiB
    execution_retention_days: int = 10


PLATFORM_QUOTA_MAXIMUMS = Quotas(
    max_actions=1_000, max_concurrent_executions=1_000, max_code_bytes=1 * MiB, execution_retention_days=90
)


@dataclass(frozen=True, slots=True)
class TenantLimits:
    """A tenant's execution limits and quotas: platform defaults with the operator's overrides."""

    execution: Limits
    quotas: Quotas

    @classmethod
    def from_overrides(cls, overrides: dict[str, int]) -> TenantLimits:
        """Apply `overrides` (names from either set) to the defaults, within the platform maximums.

        Every login asks for its tenant's limits: the answers (immutable) are kept per set of overrides.
        """
        try:
            key = tuple(sorted(overrides.items()))
            hash(key)
        except TypeError:  # an unhashable value: worked out (and refused) without being kept
            return cls._from_overrides(overrides)
        return _tenant_limits(key)

    @classmethod
    def _from_overrides(cls, overrides: dict[str, int]) -> TenantLimits:
        unknown = set(overrides) - set(Limits.names()) - set(Quotas.names())
        if unknown:
            raise LimitsError(f"unknown limit: {', '.join(sorted(unknown))}")
        execution = Limits(**{k: v for k, v in overrides.items() if k in Limits.names()})
        quotas = Quotas(**{k: v for k, v in overrides.items() if k in Quotas.names()})
        return cls(execution.within(PLATFORM_MAXIMUMS), quotas.within(PLATFORM_QUOTA_MAXIMUMS))

    def as_dict(self) -> dict[str, int]:
        return {**self.execution.as_dict(), **self.quotas.as_dict()}


@dataclass(frozen=True, slots=True)
class FixedLimits:
    """Limits from the hosted product that operators do not change."""

    secrets_per_action: int = 30
    secret_name_chars: int = 128
    secret_value_chars: int = 4096
    actions_per_trigger: int = 20
    versions_per_action: int = 50


FIXED = FixedLimits()


@functools.lru_cache(maxsize=4096)
def _tenant_limits(overrides: tuple[tuple[str, int], ...]) -> TenantLimits:
    return TenantLimits._from_overrides(dict(overrides))
