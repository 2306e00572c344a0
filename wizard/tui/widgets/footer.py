"""Textual's footer, composed with the screen and rebuilt only when the keys it shows change.

Textual's footer composes empty and fills in after the screen's first refresh; then a screen that
appears publishes its bindings several times in a row (focused, resumed, mounted) and the footer queues a
full recompose of its keys for each one, every key mounted, styled and laid out again, all showing the
same keys.  This one composes its keys with the screen, and a queued recompose is skipped when a later
change has queued another, or when the keys to show are the ones already shown (the same shown bindings,
enabled state, tooltips and key labels).  The keys shown once the screen has settled are the same as
with Textual's footer.  It keeps the start screen's first paint close to a bare Textual app's
(bench/first_paint.py, docs/bench-first-paint.md).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING

from textual.widgets import Footer

if TYPE_CHECKING:
    from textual.app import ComposeResult
    from textual.screen import Screen


class CoalescingFooter(Footer):
    _changes = 0
    _composed: Hashable = None

    def bindings_changed(self, screen: Screen[object]) -> None:
        # Textual's Footer.bindings_changed, with a change counter on the queued recompose
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen:
            self._changes += 1
            self.call_after_refresh(self._recompose_latest, self._changes)

    async def _recompose_latest(self, change: int) -> None:
        # a later change has queued its own recompose; or the keys to show are already shown
        if change == self._changes and self._shown() != self._composed:
            await self.recompose()

    def _shown(self) -> Hashable:
        """What Footer.compose shows: the shown bindings with their state and key label, and the palette's."""
        app = self.app
        active = self.screen.active_bindings
        keys = tuple((binding, enabled, tooltip, app.get_key_display(binding))
                     for (_, binding, enabled, tooltip) in active.values() if binding.show)
        palette = active.get(app.COMMAND_PALETTE_BINDING) if self.show_command_palette else None
        if palette is not None and app.ENABLE_COMMAND_PALETTE:
            return keys, (palette.binding, palette.enabled, app.get_key_display(palette.binding))
        return keys, None

    def compose(self) -> ComposeResult:
        # the screen's bindings are there when it composes: its keys come with it, not a refresh later
        self.set_reactive(Footer._bindings_ready, True)
        self._composed = self._shown()
        yield from super().compose()
