"""Errors that reach users: each carries a Chinese and an English message, safe to display."""
from __future__ import annotations


class InputError(ValueError):
    """A request the cockpit cannot answer as asked (bad date, unknown id, scope outside the user's rights)."""

    status = 400

    def __init__(self, zh: str, en: str):
        super().__init__(en)
        self.zh = zh
        self.en = en

    def message(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


class ScopeDenied(InputError):
    """The requested scope lies outside what the caller may see."""

    status = 403


class AppDatabaseError(RuntimeError):
    """The cockpit's own database (notes and action items) failed to store or read: the page says so, and
    the log holds the driver's error (chained as ``__cause__``)."""
