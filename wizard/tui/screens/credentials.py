"""Credentials: each secret comes from its reference (env:NAME, file:/path, none) or is typed, masked.

A typed value stays in memory (:attr:`Session.typed`) and is registered with the redactor; the profile
only ever gets the reference as written (env:NAME, file:/path, ask), and ``ask`` for a typed secret that
had none.  Saving needs references only, never the values (an env: variable not set in this shell, an
``ask`` not typed yet); going on needs every value.  Resolving references reads environment variables and
files, so it runs in a worker.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Footer, Header, Input, Label, Static

from wizard.tui.form import SECRET_SPECS, SecretSpec, refs_to_save, secret_ref, secrets_needed, with_secret_refs
from wizard.tui.screens.base import WizardScreen, describe_error
from wizard.tui.typeahead import focus_first_field
from wizard.tui.widgets.field import FieldInput

if TYPE_CHECKING:
    from wizard.profile import Profile
    from wizard.secrets import Secrets

ALL_KEYS = tuple(s.key for s in SECRET_SPECS)
MONITOR_KEYS = ("redis_password", "admin_password", "sentinel_password")  # never the SST password
NONE_MEANS = {"sst_password": "no SST password", "redis_password": "Redis without a password",
              "admin_password": "unix-socket authentication on the node",
              "dns_api_key": "no PowerDNS API (the record is a rendered file)",
              "sentinel_password": "Sentinels without a password of their own"}


class CredentialsScreen(WizardScreen):
    """`purpose="wizard"` goes on to the checks; `purpose="monitor"` dismisses with True when done."""

    BINDINGS = [
        Binding("ctrl+n", "next", "Next"),
        Binding("ctrl+s", "save", "Save"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, data: dict[str, Any], keys: tuple[str, ...] = ALL_KEYS, *, purpose: str = "wizard") -> None:
        super().__init__()
        self.data = data
        needed = secrets_needed(data)  # the API key only with an API URL, the Sentinels' password with Sentinels
        self.specs: list[SecretSpec] = [s for s in SECRET_SPECS if s.key in keys and s.key in needed]
        self.purpose = purpose
        self.status: dict[str, tuple[bool, str]] = {}
        self._generation = 0
        self._busy = False
        self.opened_with: tuple[dict[str, str], dict[str, str]] | None = None  # Esc compares with it

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="secrets"):
            yield Static("Each secret comes from its reference (env:NAME, file:/path, none) or is typed below. "
                         "Typed secrets are used for this session only: the profile keeps the reference.",
                         id="secrets-intro")
            for spec in self.specs:
                with Vertical(classes="secret", id=f"secret-{spec.key}"):
                    yield Label(f"{spec.label}  ({spec.dotted})", classes="section-title")
                    with Horizontal(classes="secret-inputs"):
                        yield FieldInput(secret_ref(self.data, spec), placeholder="env:NAME, file:/path, ask or none",
                                    id=f"ref-{spec.key}", compact=True)
                        yield FieldInput(self.session.typed.get(spec.key, ""), placeholder="or type it here",
                                    password=True, id=f"val-{spec.key}", compact=True)
                    yield Static("resolving...", id=f"st-{spec.key}", classes="secret-status", markup=False)
        with Horizontal(id="nav"):
            yield Static("", id="form-status", markup=False)
            yield Button("Back", id="back", compact=True)
            yield Button("Next", id="next", variant="primary", disabled=True, compact=True)
        yield Footer(compact=True)  # every key fits in 80 columns

    def on_mount(self) -> None:
        self.sub_title = "credentials" if self.purpose == "wizard" else "credentials for the monitor"
        self.opened_with = (self.refs(), self.typed())
        if self.specs:  # now, not in a callback: typing works at once, no Tab first
            focus_first_field(self, f"#ref-{self.specs[0].key}")
        self.resolve()

    # -- values -------------------------------------------------------------------------------------
    def refs(self) -> dict[str, str]:
        return {s.key: self.query_one(f"#ref-{s.key}", Input).value.strip() for s in self.specs}

    def typed(self) -> dict[str, str]:
        out = {}
        for s in self.specs:
            value = self.query_one(f"#val-{s.key}", Input).value
            if value:
                out[s.key] = value
        return out

    @on(Input.Changed)
    def _changed(self) -> None:
        self.resolve()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.focus_next()

    # -- resolution ---------------------------------------------------------------------------------
    def resolve(self) -> None:
        self._generation += 1
        self.query_one("#next", Button).disabled = True
        self._resolve(self.refs(), set(self.typed()), self._generation)

    @work(thread=True, group="resolve", exit_on_error=False)
    def _resolve(self, refs: dict[str, str], typed: set[str], generation: int) -> None:
        from wizard.secrets import REF_RE, SecretError, resolve

        status: dict[str, tuple[bool, str]] = {}
        for spec in self.specs:
            ref = refs[spec.key]
            if spec.key in typed:
                kept = refs_to_save({spec.key: ref}, {spec.key})[spec.key]
                status[spec.key] = (True, f"typed: used for this session only; the profile keeps {kept}")
            elif not REF_RE.match(ref):
                status[spec.key] = (False, "not a reference: use env:NAME, file:/path, ask or none "
                                           "(type the secret itself in the masked field)")
            elif ref == "ask":
                status[spec.key] = (False, "set to 'ask': type it in the masked field, or use env:NAME / file:/path")
            elif ref == "none":
                status[spec.key] = (True, f"none: {NONE_MEANS[spec.key]}")
            else:
                try:
                    resolve(ref, spec.dotted)
                    status[spec.key] = (True, f"found: read from {ref}")
                except SecretError as exc:
                    status[spec.key] = (False, describe_error(exc))
        self.ui(self.show_status, status, generation)

    def show_status(self, status: dict[str, tuple[bool, str]], generation: int | None = None) -> None:
        """Show, per secret, where it comes from or what is wrong (public: tests feed it)."""
        if generation is not None and generation != self._generation:
            return
        self.status = status
        for key, (ok, text) in status.items():
            label = self.query_one(f"#st-{key}", Static)
            label.update(("ok  " if ok else "fix ") + text)
            label.set_class(not ok, "bad")
            label.set_class(ok, "good")
        ok = self.ready
        self.query_one("#next", Button).disabled = not ok
        bad = [s.label for s in self.specs if not status.get(s.key, (False, ""))[0]]
        self.query_one("#form-status", Static).update(
            "Every secret is available." if ok else f"Still needed: {', '.join(bad)}.")
        self.refresh_bindings()

    @property
    def ready(self) -> bool:
        return bool(self.status) and all(self.status.get(s.key, (False, ""))[0] for s in self.specs) \
            and not self._busy

    @property
    def can_save(self) -> bool:
        """Saving needs a reference for each secret (or a typed value), never the values themselves."""
        from wizard.secrets import REF_RE

        typed = self.typed()
        return not self._busy and all(REF_RE.match(ref) or key in typed for key, ref in self.refs().items())

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "next":
            return True if self.ready else None
        if action == "save":
            return True if self.can_save else None
        return True

    def why_disabled(self, action: str) -> str | None:
        if self._busy:
            return "Working on the secrets; a moment."
        if action == "next":
            bad = [s.label for s in self.specs if not self.status.get(s.key, (False, ""))[0]]
            return (f"Still needed: {', '.join(bad)} (each says how under it)." if self.status and bad
                    else "Still resolving the secrets; a moment.")
        if action == "save":
            from wizard.secrets import REF_RE

            typed = self.typed()
            bad = [s.label for s in self.specs if not REF_RE.match(self.refs()[s.key]) and s.key not in typed]
            return (f"Not a reference: {', '.join(bad)}. Use env:NAME, file:/path, ask or none (the profile keeps "
                    "references only), or type the secret in the masked field.")
        return None

    def adopt_settings(self, found: dict[str, str]) -> None:
        """Settings the checks detected: keep them when this screen saves or goes on again."""
        from wizard.tui.findings import with_setting

        for path, value in found.items():
            self.data = with_setting(self.data, path, value)

    # -- next / save --------------------------------------------------------------------------------
    def action_next(self) -> None:
        if self.ready:
            self._busy = True
            self.refresh_bindings()
            self._finish(self.refs(), self.typed())

    def action_save(self) -> None:
        if self.can_save:
            self._save_refs(self.refs(), self.typed())

    def unsaved_edits(self) -> str:
        """The edits made here, in a few words ("" none): what quitting would drop."""
        if self.opened_with is not None and (self.refs(), self.typed()) != self.opened_with:
            return "The references and secrets typed here"
        return ""

    def action_back(self) -> None:
        """Back; with references changed or secrets typed here, only after the person says to drop them."""
        if self.opened_with is not None and (self.refs(), self.typed()) != self.opened_with:
            from wizard.tui.screens.discard import DiscardEditsScreen

            def answered(drop: bool | None) -> None:
                if drop:
                    self._leave()

            self.app.push_screen(DiscardEditsScreen("The references and secrets typed here"), answered)
            return
        self._leave()

    def _leave(self) -> None:
        if self.purpose == "wizard":
            self.app.pop_screen()
        else:
            self.dismiss(False)

    @work(thread=True, group="secrets", exit_on_error=False)
    def _finish(self, refs: dict[str, str], typed: dict[str, str]) -> None:
        from wizard.profile import validate_profile
        from wizard.secrets import REDACTOR, Secrets, resolve

        try:
            for value in typed.values():
                REDACTOR.add(value)
            refs = refs_to_save(refs, typed)
            data = with_secret_refs(self.data, refs)
            profile = validate_profile(data, source="profile", check_files=self.purpose == "wizard")
            if self.purpose == "wizard":
                secrets = Secrets.resolve_for(profile, given=typed)
            else:
                def pick(spec: SecretSpec) -> str | None:
                    return typed[spec.key] if spec.key in typed else resolve(refs[spec.key], spec.dotted)

                by_key = {s.key: pick(s) for s in self.specs}
                secrets = Secrets(None, by_key.get("admin_password"), by_key.get("redis_password"),
                                  sentinel_password=by_key.get("sentinel_password"))
            self.session.data = data
            self.session.profile = profile
            self.session.typed = dict(typed)
            self.session.secrets = secrets
            self.ui(self.done, profile, secrets)
        finally:
            self._busy = False
            self.ui(self.refresh_bindings)

    @work(thread=True, group="secrets", exit_on_error=False)
    def _save_refs(self, refs: dict[str, str], typed: dict[str, str]) -> None:
        """Put the references into the session's profile, then the save dialog: no secret is resolved to
        save (an env: variable unset here, an 'ask' not typed: the file is still right)."""
        from wizard.profile import validate_profile
        from wizard.secrets import REDACTOR, SecretError, Secrets

        for value in typed.values():
            REDACTOR.add(value)
        data = with_secret_refs(self.data, refs_to_save(refs, typed))
        profile = validate_profile(data, source="profile", check_files=False)
        self.session.data, self.session.profile, self.session.typed = data, profile, dict(typed)
        if self.purpose == "wizard":  # what resolves now is the session's (the palette's actions reuse it)
            with contextlib.suppress(SecretError):
                self.session.secrets = Secrets.resolve_for(profile, given=typed)
        self.ui(super().action_save)  # the save dialog: where, with a choice

    def done(self, profile: Profile, secrets: Secrets) -> None:
        if self.purpose == "wizard":
            from wizard.tui.screens.checks import ChecksScreen

            self.app.push_screen(ChecksScreen())
        else:
            self.dismiss(True)
