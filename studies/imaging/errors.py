"""What can go wrong turning stored pixel data into frames or images. Messages carry no patient data."""

from __future__ import annotations


class CannotDecode(Exception):
    """The pixel data cannot be decoded here (no codec for its syntax, or a corrupt stream)."""


class FrameOutOfRange(Exception):
    """A frame number the instance does not have (or it has no pixel data at all)."""
