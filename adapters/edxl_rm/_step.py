"""The aid step model the codec maps: ``schema.aid``'s, one declaration for every part."""

from __future__ import annotations

from schema.aid import MAX_NOTE, MAX_QUANTITY, AidDisclosure, AidStep, AidStepKind

__all__ = ["MAX_NOTE", "MAX_QUANTITY", "AidDisclosure", "AidStep", "AidStepKind"]
