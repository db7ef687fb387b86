"""The Processor contract shared by Sen2Cor and the built-in processor.

A processor turns one L1C product into one L2A product inside a staging directory it is
given, and nothing else: it never writes outside that directory. The caller (the campaign's
job runner) verifies the result and moves it into place atomically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from s2l2a import defaults
from s2l2a.campaign.failures import FailureClass

if TYPE_CHECKING:
    from s2l2a.safe import L1CProduct


@dataclass
class JobSettings:
    """What one conversion may use and how it should be done."""

    cores: int = defaults.CORES_PER_JOB
    memory_mb: int = defaults.MEMORY_MB
    timeout_s: float = defaults.TIMEOUT_S
    resolution: int | None = None          # 10, 20, 60 or None for the processor's default
    processing_baseline: str | None = None  # e.g. "05.10"; None = processor default
    output_format: str | None = None       # JP2 | COG (built-in processor); None: its default
    extra: dict[str, Any] = field(default_factory=dict)  # processor-specific settings


@dataclass
class L2AResult:
    """A finished, verified L2A product still inside the staging directory."""

    product_dir: Path          # the *_MSIL2A_*.SAFE directory
    processor: str             # "sen2cor" | "builtin" | ...
    processor_version: str
    log_path: Path | None = None
    details: dict[str, Any] = field(default_factory=dict)


class ProcessingFailed(Exception):
    """A conversion failed; ``failure_class`` says why, ``str()`` is one line with what and where."""

    def __init__(self, message: str, failure_class: FailureClass = FailureClass.OTHER,
                 exit_status: int | None = None, log_path: Path | None = None) -> None:
        super().__init__(message)
        self.failure_class = FailureClass(failure_class)
        self.exit_status = exit_status
        self.log_path = log_path


@runtime_checkable
class Processor(Protocol):
    """Converts one L1C product into one L2A product inside ``staging_dir``."""

    name: str

    def version(self) -> str:
        """Version string recorded with every job (e.g. "02.11.00" or "s2l2a-builtin 0.1.0")."""
        ...

    def process(self, product: L1CProduct, staging_dir: Path, settings: JobSettings,
                log_path: Path) -> L2AResult:
        """Convert; raise ProcessingFailed with a FailureClass on any failure."""
        ...
