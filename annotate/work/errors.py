"""What the work machinery refuses, for every kind of work (invalid input is
`annotate.inputs.InputError`)."""

from __future__ import annotations

from typing import Any

from annotate.inputs import InputError


class StaleEdit(Exception):
    """The work changed since the editor loaded it; nothing was written.

    `by_editor` says whether the editor made that change themselves (another tab of
    theirs), so the message blames "you, in another tab" rather than "someone else".
    """

    def __init__(self, current_version: int, *, by_editor: bool = False) -> None:
        who = "by you in another tab" if by_editor else "by someone else"
        super().__init__(
            f"This was changed {who} (now version {current_version}). "
            "Reload it and apply your change again."
        )
        self.current_version = current_version
        self.by_editor = by_editor


class StaleDraft(Exception):
    """The server holds a draft this write must not replace; nothing was written.

    `other_tab`: the newer draft came from another tab of the same expert (drafts belong
    to one expert, so it is never someone else's). `revision`: the draft the server keeps.
    """

    def __init__(self, revision: int, *, other_tab: bool) -> None:
        if other_tab:
            message = (
                "You changed this draft in another tab; reload to see that version "
                "(nothing was overwritten)."
            )
        else:
            message = "The server already has a newer draft of this item; nothing was overwritten."
        super().__init__(message)
        self.revision = revision
        self.other_tab = other_tab


class AlreadyCommitted(InputError):
    """New work on an item the expert already committed work on (e.g. from a stale tab);
    `record` is that committed work."""

    def __init__(self, record: Any, message: str) -> None:
        super().__init__("score", message)
        self.record = record


class NotClaimed(Exception):
    """Work on an item the expert neither holds nor has a draft of."""
