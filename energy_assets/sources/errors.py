"""Errors raised by the consumption sources."""

from __future__ import annotations


class SourceError(Exception):
    """A source could not deliver rows for a window."""


class SourceFormatError(SourceError, ValueError):
    """The source's input cannot be parsed: wrong columns, bad values, truncated rows."""


class SourceConfigurationError(SourceError):
    """The source is set up wrongly (no file given, a missing file, a folder given as the file): retrying cannot help."""


class EmptySourceError(SourceError):
    """The source holds no rows at all for the requested window (not published yet, or out of range)."""


class SourceUnavailableError(SourceError):
    """The source could not be reached or refused the request."""


class SourceRequestError(SourceError):
    """The source rejected the request itself (an HTTP 4xx other than 429): retrying cannot help."""


class SourceDeadlineError(SourceError):
    """The whole fetch, retries included, did not finish within its deadline: the run fails at once."""
