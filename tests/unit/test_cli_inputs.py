"""The command line as a user meets it (issue 9 leftovers a-c): every missing input in one message,
render's placeholders and its summary, broken YAML named by line.  Runs the real CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from wizard.cli import InputsMissing, load, missing_env_names
from wizard.profile import load_profile
from wizard.render import PLACEHOLDERS_FILE, placeholders_in, render, rendered_secret_refs
from wizard.secrets import SecretError, Secrets

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "profiles" / "example.yaml"
ENV_NAMES = ("STUDIO_CLUSTER_SST_PASSWORD", "STUDIO_CLUSTER_REDIS_PASSWORD")


def cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`studio-cluster ARGS` from another directory, as a user with an empty HOME and no secrets set."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_CLUSTER_")}
    clean.update(HOME=str(tmp_path / "home"), COLUMNS="200", **env)
    (tmp_path / "home").mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "wizard", *args], capture_output=True, text=True, cwd=tmp_path,
                          env=clean, timeout=120, stdin=subprocess.DEVNULL)


def test_plan_names_every_missing_input_at_once(tmp_path: Path) -> None:
    run = cli(tmp_path, "plan", str(EXAMPLE))
    assert run.returncode == 2, run.stderr
    err = run.stderr
    assert "6 inputs this command needs are missing; fix them all" in err
    for field in ("nodes[0:studio1].ssh.key_file", "nodes[0:studio1].ssh.known_hosts", "nodes[1:studio2].ssh.key_file",
                  "nodes[2:arbiter].ssh.key_file", "database.sst_password", "redis.password"):
        assert f"  - {field}: " in err, (field, err)
    assert "environment variables to export: STUDIO_CLUSTER_SST_PASSWORD STUDIO_CLUSTER_REDIS_PASSWORD" in err
    assert "Traceback" not in err


def test_check_with_secrets_set_names_only_the_files(tmp_path: Path) -> None:
    run = cli(tmp_path, "check", str(EXAMPLE), STUDIO_CLUSTER_SST_PASSWORD="sst-pass",
              STUDIO_CLUSTER_REDIS_PASSWORD="redis-pass")
    assert run.returncode == 2
    assert "4 inputs this command needs are missing" in run.stderr
    assert "environment variable" not in run.stderr


def test_render_needs_no_key_files_and_names_its_secret_with_the_way_out(tmp_path: Path) -> None:
    run = cli(tmp_path, "render", str(EXAMPLE), "--out", "out")
    assert run.returncode == 2
    assert "1 input this command needs is missing" in run.stderr
    assert "database.sst_password: environment variable STUDIO_CLUSTER_SST_PASSWORD is not set" in run.stderr
    assert "key_file" not in run.stderr  # render connects nowhere
    assert "--placeholders" in run.stderr
    assert not (tmp_path / "out").exists()


def test_render_with_placeholders_says_what_it_wrote_and_marks_them(tmp_path: Path) -> None:
    run = cli(tmp_path, "render", str(EXAMPLE), "--out", "out", "--placeholders")
    assert run.returncode == 0, run.stderr
    out = run.stdout
    written = sorted(p for p in (tmp_path / "out").rglob("*") if p.is_file() and p.name != PLACEHOLDERS_FILE)
    assert f"wrote {len(written)} files for 4 targets (studio1, studio2, arbiter, dns) into out/:" in out
    for p in written:
        assert f"  {p.relative_to(tmp_path / 'out')}\n" in out
    assert "2 of them hold placeholders instead of secrets (<sst_password>)" in out
    note = (tmp_path / "out" / PLACEHOLDERS_FILE).read_text()
    assert "studio1/etc/mysql/mariadb.conf.d/99-studio-cluster.cnf: <sst_password>" in note
    cnf = (tmp_path / "out/studio1/etc/mysql/mariadb.conf.d/99-studio-cluster.cnf").read_text()
    assert '"sst:<sst_password>"' in cnf

    again = cli(tmp_path, "render", str(EXAMPLE), "--out", "out", STUDIO_CLUSTER_SST_PASSWORD="real-sst-pass")
    assert again.returncode == 0, again.stderr
    assert "placeholders" not in again.stdout
    assert not (tmp_path / "out" / PLACEHOLDERS_FILE).exists()  # a stale list would lie
    assert "real-sst-pass" in (tmp_path / "out/studio1/etc/mysql/mariadb.conf.d/99-studio-cluster.cnf").read_text()


@pytest.mark.parametrize("mutate, words", [
    (lambda t: t.replace("\n  authoring_name:", "\n\tauthoring_name:", 1), "tab character"),
    (lambda t: t.replace("cluster_name: studio-prod", 'cluster_name: "studio-prod', 1), "quoted value is not closed"),
    (lambda t: t + "\nstudio:\n  - install_path: /opt/crafter\n", "is a list, but it must be a mapping"),
    (lambda t: t + "\nprefered_primary: studio1\n", "did you mean 'preferred_primary'"),
    (lambda t: t.replace("ttl: 5", "ttl: five", 1),
     "dns.ttl: is 'five' (a string), but it must be a whole number; write it like `ttl: 5`"),
])
def test_broken_yaml_is_named_by_file_line_and_column(tmp_path: Path, mutate: object, words: str) -> None:
    text = mutate(EXAMPLE.read_text())  # type: ignore[operator]
    (tmp_path / "p.yaml").write_text(text)
    for command in (["render", "p.yaml", "--out", "o"], ["plan", "p.yaml"]):
        run = cli(tmp_path, *command)
        assert run.returncode == 2
        assert "p.yaml is not a valid profile:" in run.stderr
        assert words in run.stderr, run.stderr
        assert ", column " in run.stderr and "line " in run.stderr
        assert "Traceback" not in run.stderr


def test_secrets_resolve_for_reports_every_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    p = load_profile(EXAMPLE, check_files=False)
    with pytest.raises(SecretError) as err:
        Secrets.resolve_for(p)
    assert [x.split(":")[0] for x in err.value.problems] == ["database.sst_password", "redis.password"]
    assert missing_env_names(err.value.problems) == list(ENV_NAMES)


def test_load_never_prompts_before_every_other_input_is_there(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    """An 'ask' secret would be asked, and then the run would stop at an unset variable."""
    text = EXAMPLE.read_text().replace("admin_password: none", "admin_password: ask")
    text = text.replace("key_file: ~/.ssh/studio-cluster_ed25519", f"key_file: {tmp_path / 'key'}")
    text = text.replace("known_hosts: ~/.ssh/known_hosts", f"known_hosts: {tmp_path / 'key'}")
    (tmp_path / "key").write_text("not read here")
    (tmp_path / "p.yaml").write_text(text)
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    asked: list[str] = []

    def prompt(what: str) -> str:
        asked.append(what)
        return "typed"

    monkeypatch.setattr("wizard.cli._prompt", prompt)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    with pytest.raises(InputsMissing) as err:
        load(str(tmp_path / "p.yaml"))
    assert asked == [] and len(err.value.problems) == 2
    monkeypatch.setenv("STUDIO_CLUSTER_SST_PASSWORD", "sst-pass")
    monkeypatch.setenv("STUDIO_CLUSTER_REDIS_PASSWORD", "redis-pass")
    _, secrets = load(str(tmp_path / "p.yaml"))
    assert asked == ["database.admin_password"] and secrets.admin_password == "typed"


def test_rendered_secret_refs_cover_what_render_embeds() -> None:
    p = load_profile(EXAMPLE, check_files=False)
    assert rendered_secret_refs(p) == {"sst_password": ("env:STUDIO_CLUSTER_SST_PASSWORD", "database.sst_password")}
    marked = {n: [f for f in files if placeholders_in(f.content)] for n, files in render(p, None).items()}
    assert {n: len(f) for n, f in marked.items()} == {"studio1": 1, "studio2": 1, "arbiter": 0, "dns": 0}
    real = render(p, Secrets("s3cret-value", None, None))
    assert not any(placeholders_in(f.content) for files in real.values() for f in files)


def local_profile(tmp_path: Path, port: int) -> Path:
    """The example with its nodes on 127.0.0.1-3:`port`, a key and an empty known_hosts in the CLI's HOME."""
    import yaml

    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True, exist_ok=True)
    key = home / ".ssh" / "studio-cluster_ed25519"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (home / ".ssh" / "known_hosts").write_text("")
    data = yaml.safe_load(EXAMPLE.read_text())
    for i, node in enumerate(data["nodes"]):
        node["address"] = f"127.0.0.{i + 1}"
        node["ssh"]["port"] = port
    profile = tmp_path / "p.yaml"
    profile.write_text(yaml.safe_dump(data))
    return profile


def test_restore_onto_a_node_that_is_not_a_studio_node_is_refused_first(tmp_path: Path) -> None:
    """Newcomer finding: --onto studio9 was only checked after connecting to the Arbiter."""
    profile = local_profile(tmp_path, 1)
    for onto in ("studio9", "arbiter"):
        run = cli(tmp_path, "backup", "restore", str(profile), "--onto", onto, "--yes",
                  STUDIO_CLUSTER_SST_PASSWORD="s", STUDIO_CLUSTER_REDIS_PASSWORD="r")
        assert run.returncode == 2, run.stderr
        assert f"--onto '{onto}' is not a Studio node" in run.stderr and "studio1, studio2" in run.stderr, run.stderr


@pytest.mark.parametrize(("option", "value", "says"), [
    ("--keep-last", "0", "'0' is not a whole number from 1 to 10000 (prune never removes every backup)"),
    ("--keep-last", "-1", "'-1' is not a whole number from 1 to 10000"),
    ("--keep-last", "two", "'two' is not a whole number from 1 to 10000"),
    ("--keep-days", "-1", "'-1' is not a whole number from 0 to 36500 (0: no age rule)"),
    ("--keep-days", "0.5", "'0.5' is not a whole number from 0 to 36500"),
])
def test_prune_limits_out_of_range_are_a_usage_error_before_anything_connects(tmp_path: Path, option: str,
                                                                             value: str, says: str) -> None:
    """Newcomer finding: `backup prune --keep-last 0` went down the internal-error path ("report it", exit 1), and
    `--keep-days -1` was taken as given.  Right: exit 2 naming the option and its range, nothing contacted."""
    profile = local_profile(tmp_path, 1)
    run = cli(tmp_path, "backup", "prune", str(profile), option, value, "--json",
              STUDIO_CLUSTER_SST_PASSWORD="s", STUDIO_CLUSTER_REDIS_PASSWORD="r")
    assert run.returncode == 2, run.stderr
    assert f"argument {option}: {says}" in run.stderr, run.stderr
    assert "report it" not in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize(("args", "says"), [
    (("list", "--donor", "studio9"), "--donor applies to take only"),
    (("take", "--keep-last", "3"), "--keep-last applies to prune only"),
    (("verify", "--yes", "--onto", "studio1"), "--onto applies to restore only; --yes applies to restore only"),
    (("prune", "--id", "x"), "--id applies to verify and restore only"),
])
def test_a_backup_option_given_to_an_action_it_does_not_apply_to_is_refused(tmp_path: Path, args: tuple[str, ...],
                                                                          says: str) -> None:
    """Newcomer finding: `backup list --donor studio9` printed the list as if the option meant something."""
    action, *rest = args
    run = cli(tmp_path, "backup", action, str(local_profile(tmp_path, 1)), *rest,
              STUDIO_CLUSTER_SST_PASSWORD="s", STUDIO_CLUSTER_REDIS_PASSWORD="r")
    assert run.returncode == 2, run.stderr
    assert f"backup {action}: {says} (nothing was done)" in run.stderr, run.stderr


def test_an_unreachable_node_is_one_clear_error_not_a_traceback(tmp_path: Path) -> None:
    """Newcomer finding: a host that accepts TCP and closes it (no SSH banner) printed ~60 lines of paramiko
    tracebacks, then "... and report it" as if it were our bug.  Right: one error naming the node, and the fix."""
    import socket
    import threading


    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]

    def close_everything() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.close()

    threading.Thread(target=close_everything, daemon=True).start()
    profile = local_profile(tmp_path, port)
    try:
        run = cli(tmp_path, "plan", str(profile), STUDIO_CLUSTER_SST_PASSWORD="s", STUDIO_CLUSTER_REDIS_PASSWORD="r")
    finally:
        server.close()
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr and "report it" not in run.stderr, run.stderr
    assert "studio1" in run.stderr and "fix:" in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) <= 4, run.stderr
