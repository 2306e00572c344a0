"""Keys typed ahead of the screen act in the order typed and land where the person meant them.

Textual routes a key when the app takes it from the terminal: to the widget that has the focus at that
moment (or to the screen when none has), through that widget's queue.  Two things happened later than
that, so keys typed quickly, or under load, went astray (issue 11 item 3):

* A key binding that is not a priority binding (Tab, ctrl+u in an input, ctrl+n on a form) runs only
  after the key has gone through the focused widget and bubbled back to the app.  The keys typed
  after it had already been routed, and the input had already inserted them: after a Tab they went
  into the previous field (``arbiter19`` / ``8.18.0.13``); after ctrl+u in the save dialog the first
  letters of the new path were typed first and then deleted with the old path.  Here the app runs a
  key's bindings when it takes the key, unless the focused widget consumes that key itself (an input
  its printable characters, a text area all it types): :meth:`TypeAhead.on_event`.
* A screen that focused its first field with ``widget.focus()`` got the focus in a later callback of
  the app, behind keys already typed.  :func:`focus_first_field` focuses it synchronously in the
  screen's ``on_mount``.  (Keys typed while a screen is still mounting wait in Textual until it is
  mounted; the tests type into a screen whose mount is held back to show they arrive whole.)

No value is set into an input after its screen takes keys: values are given when composed.
"""

from __future__ import annotations

import sys
from typing import Any

from textual import events
from textual.app import App
from textual.screen import Screen


def focus_first_field(screen: Screen[Any], selector: str) -> None:
    """Focus the first focusable widget matching `selector` now, not in a later callback (call it from
    the screen's ``on_mount``); nothing when none matches.  No scrolling: the layout is not done yet, so
    a scroll now lands a line off (a screen's first field is in view when it opens).  An input's value
    comes selected, so typing replaces a prefilled value; later focus by Tab does not select
    (:class:`wizard.tui.widgets.field.FieldInput`)."""
    from wizard.tui.widgets.field import FieldInput

    for widget in screen.query(selector):
        if widget.focusable:
            if isinstance(widget, FieldInput):  # its prefilled value comes selected
                widget.select_next_focus = True  # its Focus event selects (a blur first drops the flag)
                if screen.focused is widget:  # focused already (a modal's auto focus): no Focus event comes
                    widget.select_all()
            screen.set_focus(widget, scroll_visible=False)
            return


class TypeAhead(App[int]):
    """App base: a key's bindings run when the app takes the key (see the module docstring)."""

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded and self._bindings_first(event) and (
                await self._check_bindings(event.key, priority=True) or await self._check_bindings(event.key)
                or self.say_why_disabled(event.key)):
            return
        await super().on_event(event)

    def say_why_disabled(self, key: str) -> bool:
        """A key bound to an action that is off now (check_action None: greyed in the footer; False: hidden)
        says why in a notification instead of doing nothing: the screen's ``why_disabled(action)`` gives
        the reason, else a general line.  True when it said something (the key is then used up)."""
        for namespace, bindings in self.screen._modal_binding_chain:
            for binding in bindings.key_to_bindings.get(key, ()):
                target, name, params = self._parse_action(binding.action, namespace)
                if not isinstance(target, Screen | App) or target.check_action(name, params):
                    continue
                why = getattr(target, "why_disabled", None)
                reason = why(name) if callable(why) else None
                what = binding.description or name.replace("_", " ")
                self.notify(reason or f"{what} is not available here now.", title=f"{what}: not now",
                            severity="warning", timeout=6)
                return True
        return False

    def _bindings_first(self, event: events.Key) -> bool:
        """False when the focused widget consumes the key itself (an input its printable characters, a
        text area everything) or a widget is maximized (escape minimizes it): Textual's own order then."""
        focused = self.focused
        # TextArea's module is not imported for it (it is heavy and the first screen has none): until some
        # screen has imported it, no widget can be one.
        text_area = sys.modules.get("textual.widgets._text_area")
        if focused is not None and ((text_area is not None and isinstance(focused, text_area.TextArea))
                                    or focused.check_consume_key(event.key, event.character)):
            return False
        return self.screen.maximized is None
