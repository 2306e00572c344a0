"""What one wizard session holds between screens: the profile, typed secrets, the SSH connections.

Methods that touch the disk or the network (loading, saving, opening a :class:`wizard.remote.Remote`)
are meant to be called from thread workers, never from the event loop.  Typed secrets live only in
:attr:`Session.typed` (memory); the saved profile keeps the references as written (env:NAME,
file:/path, ask), ``ask`` only for a typed secret that had no reference.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wizard.profile import Profile
    from wizard.remote import Remote, RunLog
    from wizard.secrets import Secrets


class Session:
    def __init__(self, *, profile_path: Path | None = None, profiles_dir: Path | None = None,
                 runs_dir: Path | None = None, interval: float = 2.0) -> None:
        self.profile_path = profile_path
        self.profiles_dir = profiles_dir or Path("profiles")
        self.runs_dir = runs_dir or Path("runs")
        self.interval = interval
        self.data: dict[str, Any] | None = None  # the raw profile dict the form edits
        self.profile: Profile | None = None  # the validated profile (secret references, never values)
        self.typed: dict[str, str] = {}  # secrets typed in the credentials screen, by Secrets key
        self.secrets: Secrets | None = None
        self.saved_path: Path | None = None
        self._remote: Remote | None = None
        self._monitor_remote: Remote | None = None
        self._runlog: RunLog | None = None
        self._lock = threading.Lock()

    # -- files (call from a worker) ---------------------------------------------------------------
    def list_profiles(self) -> list[Path]:
        if not self.profiles_dir.is_dir():
            return []
        return sorted(p for p in self.profiles_dir.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())

    @staticmethod
    def read_profile_data(path: Path) -> dict[str, Any]:
        """The raw dict of a profile file (not validated: the form shows what is wrong with it)."""
        import yaml

        from wizard.profile import ProfileError, yaml_problem

        try:
            text = path.read_text()
        except OSError as exc:
            raise ProfileError(str(path), [f"(profile): cannot read it: {exc.strerror}; check the path"]) from None
        except UnicodeDecodeError as exc:
            raise ProfileError(str(path),
                               [f"(profile): is not UTF-8 text (byte {exc.start}); save it as UTF-8"]) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:  # the same words as the CLI: what is wrong, the fix, line and column
            problem, where = yaml_problem(exc, text)
            raise ProfileError(str(path), [problem], [where]) from None
        if not isinstance(data, dict):
            raise ProfileError(str(path), ["the profile must be a YAML mapping of settings"])
        return data

    def profile_target(self) -> Path:
        assert self.profile is not None
        return self.profiles_dir / f"{self.profile.cluster_name}.yaml"

    def save_profile(self, path: Path | None = None) -> Path:
        """Save the profile: its secret references as they are (env:NAME, file:/path, ask), never a value,
        and no secret needs a value to be saved; a typed secret whose reference is ``none`` is saved as
        ``ask`` (:func:`wizard.tui.form.refs_to_save`).  A profile loaded from a file is written as that file
        with only the changed settings changed, its comments and key order kept
        (:func:`wizard.yaml_merge.merge_into`); raises OSError when the file cannot be written."""
        from wizard.profile import atomic_write, save_profile, validate_profile
        from wizard.tui.form import SECRET_SPECS, refs_to_save, secret_ref, with_secret_refs

        assert self.profile is not None, "no profile to save yet"
        data = self.profile.model_dump(mode="json")
        current = {spec.key: secret_ref(data, spec) for spec in SECRET_SPECS}
        refs = {k: v for k, v in refs_to_save(current, self.typed).items() if v != current[k]}
        profile = validate_profile(with_secret_refs(data, refs), source="wizard", check_files=False)
        target = path or self.profile_target()
        text = self._as_loaded_file(profile)
        if text is None:
            self.saved_path = save_profile(profile, target)
        else:
            atomic_write(target, text)
            self.saved_path = target
        return self.saved_path

    def _as_loaded_file(self, profile: Profile) -> str | None:
        """The loaded file's text with `profile`'s values, or None (no file, not YAML, or the merged text
        would not read back as `profile`: then the profile is written whole)."""
        import json

        import yaml
        from ruamel.yaml.error import YAMLError

        from wizard.profile import ProfileError, validate_profile
        from wizard.yaml_merge import merge_into

        source = self.profile_path
        if source is None or not Path(source).is_file():
            return None
        full = json.loads(profile.model_dump_json())
        sparse = json.loads(profile.model_dump_json(exclude_defaults=True))
        try:
            text = merge_into(Path(source).read_text(), full, sparse)
            same = validate_profile(yaml.safe_load(text), check_files=False) == profile
        except (OSError, ValueError, YAMLError, yaml.YAMLError, ProfileError):
            return None
        return text if same else None

    # -- connections (call from a worker) ---------------------------------------------------------
    def runlog(self) -> RunLog:
        from wizard.pipeline import new_runlog

        with self._lock:
            if self._runlog is None:
                self._runlog = new_runlog(self.runs_dir)
            return self._runlog

    def _key_passphrases(self) -> dict[str, str]:
        """Node -> SSH key passphrase: from the resolved secrets, else resolved now from the profile's
        env:/file: references (an ``ask`` one cannot be asked here; the SSH check then says the key is
        encrypted and how to unlock it)."""
        from wizard.secrets import SecretError, Secrets

        if self.secrets is not None and self.secrets.key_passphrases:
            return self.secrets.key_passphrases
        assert self.profile is not None
        try:
            return Secrets.resolve_for(self.profile, given=self.typed, only=set()).key_passphrases
        except SecretError:
            return {}

    def remote(self) -> Remote:
        """The session's connections, for the current profile (reopened when the profile changed)."""
        from wizard.remote import Remote

        runlog = self.runlog()
        with self._lock:
            assert self.profile is not None
            old = self._remote
            if old is not None and old.profile is self.profile:
                return old
            self._remote = Remote(self.profile, runlog, key_passphrases=self._key_passphrases())
        if old is not None:
            old.close()
        return self._remote

    def monitor_remote(self) -> Remote:
        """Connections for the monitor: separate from the wizard's and without a run log, so polling every
        few seconds does not fill runs/ with status queries."""
        from wizard.remote import Remote

        with self._lock:
            assert self.profile is not None
            old = self._monitor_remote
            if old is not None and old.profile is self.profile:
                return old
            self._monitor_remote = Remote(self.profile, key_passphrases=self._key_passphrases())
        if old is not None:
            old.close()
        return self._monitor_remote

    def close(self) -> None:
        with self._lock:
            remotes = [self._remote, self._monitor_remote]
            self._remote = self._monitor_remote = None
        for remote in remotes:
            if remote is not None:
                remote.close()
