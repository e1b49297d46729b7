"""The base of every params section, and how a cross-field rule names the file it checks."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationInfo


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def source_of(info: ValidationInfo) -> str:
    """The file (or other source) being validated, for error messages: `validate_params` passes it."""
    return (info.context or {}).get("source", "params")
