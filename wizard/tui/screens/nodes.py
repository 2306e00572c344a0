"""Cluster and nodes: one form, validated on every change by the same pydantic model as profiles.

Each problem line from :func:`wizard.profile.validate_profile` is mapped back to its input
(:func:`wizard.tui.form.map_problems`) and shown right under it; Next stays disabled while anything
is wrong.  Validation runs in a thread worker because it looks at the key and known_hosts files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Checkbox, Footer, Header, Input, Label, Select, Static

from wizard.tui.form import (
    BACKUP_FIELDS,
    CONTAINERS,
    CRAFTER_FIELDS,
    DNS_FIELDS,
    GENERAL,
    MANAGERS,
    NODE_LABELS,
    REDIS_FIELDS,
    REDIS_MODES,
    SENTINEL_ONLY,
    SYSTEM_FIELDS,
    URL_ONLY,
    FieldSpec,
    Values,
    build_data,
    duplicate_problems,
    field_label,
    map_problems,
    node_fields,
    values_from_data,
)
from wizard.tui.screens.base import WizardScreen
from wizard.tui.typeahead import focus_first_field
from wizard.tui.widgets.field import CheckField, FormField, show_message

if TYPE_CHECKING:
    from wizard.profile import Profile

CHOICES: dict[str, tuple[tuple[str, str], ...]] = {"redis-mode": REDIS_MODES, "services-manager": MANAGERS}


class NodesScreen(WizardScreen):
    DEFAULT_CSS = """
    NodesScreen .field-row { height: auto; }
    NodesScreen .field-row > .form-field { width: 1fr; padding-right: 1; }
    NodesScreen .section-title { margin-top: 1; }
    """
    BINDINGS = [
        Binding("ctrl+n", "next", "Next"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, data: dict[str, Any], *, source: str = "new cluster") -> None:
        super().__init__()
        self.base = data
        self.source = source
        self.values: Values = values_from_data(data)
        self.opened_with: Values = dict(self.values)  # what Esc compares with before dropping edits
        self.touched: set[str] = set()
        self.show_all = False
        self.problems: dict[str, list[str]] | None = None  # None: not validated yet
        self.profile: Profile | None = None
        self.data: dict[str, Any] = build_data(data, self.values)
        self._generation = 0
        self._footer_ok: bool | None = None

    def edited_fields(self) -> list[str]:
        """Labels of the fields whose value differs from when the form opened."""
        return [field_label(k) for k, v in self.values.items() if self.opened_with.get(k) != v]

    def unsaved_edits(self) -> str:
        """The edits made here, in a few words ("" none): what quitting would drop."""
        edited = self.edited_fields()
        return f"Your edits to {len(edited)} field(s) ({', '.join(edited[:3])}{', ...' if len(edited) > 3 else ''})" \
            if edited else ""

    def action_back(self) -> None:
        """Back to the start screen; with edits, only after the person says to drop them."""
        edited = self.edited_fields()
        if not edited:
            self.app.pop_screen()
            return
        from wizard.tui.screens.discard import DiscardEditsScreen

        what = f"Your edits to {len(edited)} field(s) ({', '.join(edited[:3])}{', ...' if len(edited) > 3 else ''})"

        def answered(drop: bool | None) -> None:
            if drop:
                self.app.pop_screen()

        self.app.push_screen(DiscardEditsScreen(what), answered)

    # -- layout -------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        v = self.values
        yield Header()
        with VerticalScroll(id="form"):
            yield FormField("cluster_name", "Cluster name (wsrep_cluster_name)", v["cluster_name"],
                            placeholder="studio-prod")
            with Horizontal(id="node-columns"):
                for i in range(3):
                    with Vertical(classes="node-column", id=f"col-{i}"):
                        yield Label(NODE_LABELS[i], classes="column-title")
                        yield Static("", id=f"e-nodes-{i}", classes="field-error", markup=False)
                        for spec in node_fields(i):
                            if spec.kind == "bool":
                                check = CheckField(spec.key, spec.check or spec.label, bool(v[spec.key]))
                                check.tooltip = spec.label
                                yield check
                            else:
                                yield FormField(spec.key, spec.label, str(v[spec.key]), placeholder=spec.placeholder)
            yield Static("", id="e-nodes", classes="field-error", markup=False)
            with Vertical(classes="form-field", id="ff-preferred_primary"):
                yield Label("Preferred primary (the authoring name prefers it)", classes="field-label")
                yield Select(self._primary_options(), value=int(v["preferred_primary"]), allow_blank=False,
                             id="f-preferred_primary", compact=True)
                yield Static("", id="e-preferred_primary", classes="field-error", markup=False)
            yield Label("DNS: the authoring name that follows the primary", classes="section-title")
            yield Static("", id="e-dns", classes="field-error", markup=False)
            yield from self._rows(DNS_FIELDS)
            yield Label("Coordination (Redis)", classes="section-title")
            yield Static("", id="e-redis", classes="field-error", markup=False)
            yield from self._rows(REDIS_FIELDS)
            yield Label("Hosts", classes="section-title")
            yield from self._rows(SYSTEM_FIELDS)
            yield Label("Crafter Studio on the Studio nodes (empty: the cluster is database only)",
                        classes="section-title")
            yield Static("", id="e-studio", classes="field-error", markup=False)
            yield from self._rows(CRAFTER_FIELDS)
            yield Label("Backups (taken on the Arbiter host)", classes="section-title")
            yield Static("", id="e-backups", classes="field-error", markup=False)
            yield from self._rows(BACKUP_FIELDS)
            yield Static("", id="e-general", classes="field-error", markup=False)
        with Horizontal(id="nav"):
            yield Static("checking...", id="form-status", markup=False)
            yield Button("Back", id="back", compact=True)
            yield Button("Next", id="next", variant="primary", disabled=True, compact=True)
        yield Footer(compact=True)  # every key fits in 80 columns

    def _rows(self, specs: list[FieldSpec]) -> ComposeResult:
        """Two fields a row (a choice, and a field whose example is long, take a row of their own), so the
        form fits 80 columns and 24 rows and nothing in it is cut there."""
        v = self.values
        pending: list[FieldSpec] = []

        def row(items: list[FieldSpec]) -> Horizontal:
            return Horizontal(*(self._field(f, v) for f in items), classes="field-row")

        for spec in specs:
            if spec.kind == "choice" or spec.wide:
                if pending:
                    yield row(pending)
                    pending = []
                yield row([spec])
                continue
            pending.append(spec)
            if len(pending) == 2:
                yield row(pending)
                pending = []
        if pending:
            yield row(pending)

    @staticmethod
    def _field(spec: FieldSpec, v: Values) -> Vertical:
        if spec.kind == "choice":
            options = CHOICES[spec.key]
            return Vertical(Label(spec.label, classes="field-label"),
                            Select(options, value=str(v[spec.key]), allow_blank=False, id=f"f-{spec.key}",
                                   compact=True),
                            Static("", id=f"e-{spec.key}", classes="field-error", markup=False),
                            classes="form-field", id=f"ff-{spec.key}")
        return FormField(spec.key, spec.label, str(v[spec.key]), placeholder=spec.placeholder)

    def _primary_options(self) -> list[tuple[str, int]]:
        return [(str(self.values[f"nodes-{i}-name"]) or NODE_LABELS[i], i) for i in (0, 1)]

    def on_mount(self) -> None:
        self.sub_title = f"cluster and nodes ({self.source})"
        for key in CONTAINERS | {GENERAL}:
            self.query_one(f"#e-{key}", Static).display = False
        for err in self.query(".field-error"):
            err.display = False
        # a loaded profile shows its problems at once; a new one only where the person typed
        self.show_all = self.source != "new cluster"
        self._show_redis_mode()
        self._show_sudo_scope()
        focus_first_field(self, "#f-cluster_name")  # now: typing works at once, no Tab first
        self.validate()

    def _show_redis_mode(self) -> None:
        sentinel = self.values.get("redis-mode") == "sentinel"
        for key in SENTINEL_ONLY:
            self.query_one(f"#ff-{key}").display = sentinel
        for key in URL_ONLY:
            self.query_one(f"#ff-{key}").display = not sentinel

    def _show_sudo_scope(self) -> None:
        """sudo_scope means something only with sudo on: its checkbox is off-limits (its value kept) without."""
        for i in range(3):
            box = self.query_one(f"#f-nodes-{i}-ssh-sudo_scope", Checkbox)
            box.disabled = not self.values.get(f"nodes-{i}-ssh-sudo")

    # -- input --------------------------------------------------------------------------------------
    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        key = (event.input.id or "")[2:]
        if key not in self.values:
            return
        self.values[key] = event.value
        if event.input.has_focus:
            self.touched.add(key)
        if key in ("nodes-0-name", "nodes-1-name"):
            select = self.query_one("#f-preferred_primary", Select)
            index = select.value if isinstance(select.value, int) else 0
            select.set_options(self._primary_options())
            select.value = index
        self.validate()

    @on(Input.Submitted)
    def _input_submitted(self) -> None:
        self.focus_next()

    @on(Checkbox.Changed)
    def _checkbox_changed(self, event: Checkbox.Changed) -> None:
        key = (event.checkbox.id or "")[2:]
        if key in self.values:
            self.values[key] = event.value
            self.touched.add(key)
            if key.endswith("-ssh-sudo"):
                self._show_sudo_scope()
            self.validate()

    @on(Select.Changed, "#f-redis-mode, #f-services-manager")
    def _choice_changed(self, event: Select.Changed) -> None:
        key = (event.select.id or "")[2:]
        if isinstance(event.value, str) and event.value != self.values.get(key):
            self.values[key] = event.value
            if key == "redis-mode":
                self._show_redis_mode()
            self.validate()

    @on(Select.Changed, "#f-preferred_primary")
    def _primary_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, int) and event.value != self.values["preferred_primary"]:
            self.values["preferred_primary"] = event.value
            self.validate()

    # -- validation ---------------------------------------------------------------------------------
    def validate(self) -> None:
        self._generation += 1
        self.problems = None  # Next acts only once this edit is validated (action_next checks `valid`)
        self._validate(dict(self.values), self._generation)

    @work(thread=True, group="validate", exit_on_error=False)
    def _validate(self, values: Values, generation: int) -> None:
        from wizard.profile import ProfileError, validate_profile

        data = build_data(self.base, values)
        try:
            profile: Profile | None = validate_profile(data, source="form")
            problems: list[str] = []
        except ProfileError as exc:
            profile, problems = None, list(exc.problems)
            problems += duplicate_problems(values, problems)
        self.ui(self.show_problems, problems, profile, data, generation)

    def show_problems(self, problems: list[str], profile: Profile | None = None, data: dict[str, Any] | None = None,
                      generation: int | None = None) -> None:
        """Show each problem line by its input; enable Next only when there are none."""
        if generation is not None and generation != self._generation:
            return  # an older validation finished after a newer edit
        mapped = map_problems(problems, self.values)
        self.problems = mapped
        self.profile = profile
        if data is not None:
            self.data = data
        for fld in self.query(FormField):
            visible = self._visible(fld.key)
            fld.set_error(mapped.get(fld.key, []) if visible else [])
        for chk in self.query(CheckField):
            chk.set_error(mapped.get(chk.key, []))
        for key in ("preferred_primary", *CHOICES, *CONTAINERS, GENERAL):
            show_message(self.query_one(f"#e-{key}", Static), mapped.get(key, []))
        ok = not mapped and profile is not None
        next_button = self.query_one("#next", Button)
        if next_button.disabled != (not ok):
            next_button.disabled = not ok
        status = self.query_one("#form-status", Static)
        if ok:
            text = "All settings are valid."
        else:
            count = len(problems) or sum(len(m) for m in mapped.values())
            first_key = next(iter(mapped))
            text = f"{count} to fix; first: {field_label(first_key)}: {mapped[first_key][0]}"
        show_message(status, [text])
        status.set_class(not ok, "bad")
        if ok != self._footer_ok:  # the footer's Next follows validity (redrawn only when that changes)
            self._footer_ok = ok
            self.refresh_bindings()

    def _visible(self, key: str) -> bool:
        return self.show_all or key in self.touched or bool(str(self.values.get(key, "")).strip())

    @property
    def valid(self) -> bool:
        return self.problems == {} and self.profile is not None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "next":
            return True if self.valid else None
        return True

    def why_disabled(self, action: str) -> str | None:
        if action == "next":
            if self.problems is None:
                return "Still checking the settings; Next is ready in a moment."
            return "Fix the settings marked in red first: " + str(self.query_one("#form-status", Static).render())
        return None

    def adopt_settings(self, found: dict[str, str]) -> None:
        """Settings a later screen detected (``services.manager: direct``): show them in the form too."""
        for path, value in found.items():
            key = path.replace(".", "-")
            if key in CHOICES:
                self.query_one(f"#f-{key}", Select).value = value
            elif key in self.values:
                self.query_one(f"#f-{key}", Input).value = value

    # -- navigation ---------------------------------------------------------------------------------
    def action_next(self) -> None:
        if not self.valid:
            self.notify("Fix the settings marked in red first.", severity="warning")
            return
        from wizard.tui.screens.credentials import CredentialsScreen

        self.session.data = self.data
        self.session.profile = self.profile
        self.app.push_screen(CredentialsScreen(self.data))
