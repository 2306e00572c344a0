"""`studio-cluster k8s render`: --out touches only an earlier render's files, every --out problem and every bad
Kubernetes value is a named error with the fix (never a traceback), --json is one List kubectl reads, and the
printed steps create the namespace before the Secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.unit.k8s_example import example_file
from wizard.cli import main
from wizard.k8s.manifests import INDEX, MARKER


def render(profile: Path, *args: str) -> int:
    return main(["k8s", "render", str(profile), *args])


def test_an_empty_out_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        render(example_file(tmp_path), "--out", "")
    assert exc.value.code == 2
    assert "an empty --out would be the current directory" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["profile.yaml"]


def test_only_an_earlier_renders_files_are_replaced_or_removed(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m"
    out.mkdir()
    mine = out / "99-my-own.yaml"  # the pattern of the render's names, but the user's file
    mine.write_text("apiVersion: v1\nkind: ConfigMap\n")
    scheduled = example_file(tmp_path, backups={"schedule": "02:30"})
    assert render(scheduled, "--out", str(out)) == 0
    first = {p.name for p in out.iterdir()}
    assert "16-cronjob-galera-backup.yaml" in first and mine.read_text() == "apiVersion: v1\nkind: ConfigMap\n"
    assert all(p.read_text().startswith(MARKER + "\n") for p in out.glob("[0-9][0-9]-*.yaml") if p != mine)
    assert (out / INDEX).read_text().split() == sorted(first - {mine.name, INDEX})
    capsys.readouterr()
    assert render(example_file(tmp_path), "--out", str(out)) == 0  # no schedule: the backup objects go
    printed = capsys.readouterr().out
    now = {p.name for p in out.iterdir()}
    gone = first - now
    assert gone == {"13-configmap-galera-backup.yaml", "14-service-galera-backup.yaml",
                    "15-persistentvolumeclaim-galera-backups.yaml", "16-cronjob-galera-backup.yaml"}
    for name in gone:
        assert f"removed {out / name} (an earlier render's" in printed
    assert mine.exists()


def test_a_file_the_render_did_not_write_is_never_overwritten(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m"
    out.mkdir()
    (out / "00-namespace-studio-cluster.yaml").write_text("# mine\n")
    assert render(example_file(tmp_path), "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert "was not written by `k8s render`" in err and "move it away" in err
    assert (out / "00-namespace-studio-cluster.yaml").read_text() == "# mine\n"
    assert sorted(p.name for p in out.iterdir()) == ["00-namespace-studio-cluster.yaml"]


def _path_through_a_file(tmp: Path) -> Path:
    (tmp / "f").write_text("")
    return tmp / "f" / "m"


def _a_file(tmp: Path) -> Path:
    (tmp / "f").write_text("")
    return tmp / "f"


def _unwritable(tmp: Path) -> Path:
    (tmp / "ro").mkdir()
    (tmp / "ro").chmod(0o500)
    return tmp / "ro" / "m"


def _a_directory_where_a_file_goes(tmp: Path) -> Path:
    (tmp / "m" / "05-service-galera.yaml").mkdir(parents=True)
    return tmp / "m"


def _index_is_a_directory(tmp: Path) -> Path:
    (tmp / "m" / INDEX).mkdir(parents=True)
    return tmp / "m"


@pytest.mark.parametrize(("where", "says"), [
    (_a_file, "is a file, not a directory"),
    (lambda tmp: Path("/proc/no-such-dir/m"), "cannot create the directory"),
    (_path_through_a_file, "a part of that path is a file"),
    (_unwritable, "choose a directory you can write to"),
    (_a_directory_where_a_file_goes, "is a directory where a manifest file goes: remove or rename it"),
    (_index_is_a_directory, "cannot read"),
])
def test_every_out_problem_is_named_with_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str], where, says
                                                 ) -> None:  # type: ignore[no-untyped-def]
    if where is _unwritable and os.geteuid() == 0:
        # root writes anywhere: a read-only bind mount stands in for "not writable" (needs unshare)
        out = tmp_path / "ro"
        out.mkdir()
        code = ("import sys; from wizard.cli import main; "
                f"sys.exit(main(['k8s', 'render', {str(example_file(tmp_path))!r}, '--out', {str(out / 'm')!r}]))")
        run = subprocess.run(["unshare", "--mount", "sh", "-c",
                              'mount --bind -o ro "$0" "$0" && exec "$1" -c "$2"', str(out), sys.executable, code],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 2 and "cannot create the directory" in run.stderr, run.stderr
        assert "Traceback" not in run.stderr and "read-only" in run.stderr
        return
    out = where(tmp_path)
    assert render(example_file(tmp_path), "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert f"--out {out}" in err and says in err and "Traceback" not in err and "report it" not in err


def test_json_is_one_list_kubectl_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert render(example_file(tmp_path), "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["apiVersion"] == "v1" and listed["kind"] == "List"
    assert [o["kind"] for o in listed["items"]][:2] == ["Namespace", "ConfigMap"]


def test_the_steps_create_the_namespace_then_the_secret_then_apply_server_side(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert render(example_file(tmp_path), "--out", str(tmp_path / "m")) == 0
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    ns = lines.index("kubectl create namespace studio-cluster")
    secret = next(i for i, line in enumerate(lines) if line.startswith("kubectl -n studio-cluster create secret"))
    apply = lines.index(f"kubectl apply --server-side -f {tmp_path / 'm'}")
    assert ns < secret < apply
    assert "--from-literal=sst-password=..." in lines[secret]


def test_render_help_shows_the_render_options() -> None:
    run = subprocess.run([sys.executable, "-m", "wizard.cli", "k8s", "render", "--help"], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0 and "--out DIR" in run.stdout and "--json" in run.stdout and "PROFILE" in run.stdout


@pytest.mark.parametrize(("kubernetes", "says"), [
    ({"cluster_domain": "my..domain"}, "kubernetes.cluster_domain"),
    ({"cluster_domain": "a" * 64 + ".local"}, "kubernetes.cluster_domain"),
    ({"cluster_domain": ".".join(["a" * 60] * 4)}, "kubernetes.cluster_domain"),
    ({"namespace": "a" * 64}, "kubernetes.namespace"),
    ({"galera_memory": "1Mi"}, "kubernetes.galera_memory"),
    ({"galera_memory": "99999999999Gi"}, "kubernetes.galera_memory"),
    ({"galera_image": "UPPER/Case:tag"}, "kubernetes.galera_image"),
    ({"namespace": "kube-system"}, "kubernetes.namespace"),
    ({"namespace": "default"}, "kubernetes.namespace"),
    ({"storage_size": "1Gi"}, "kubernetes.storage_size 1Gi is smaller than database.min_free_mb"),
    ({"backup_time_zone": "Mars/Olympus"}, "kubernetes.backup_time_zone"),
])
def test_a_bad_kubernetes_value_is_named_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         kubernetes: dict[str, str], says: str) -> None:
    code = render(example_file(tmp_path, kubernetes=kubernetes), "--out", str(tmp_path / "m"))
    captured = capsys.readouterr()
    err = captured.err + captured.out
    assert code != 0 and says in err, err
    assert "nodes.0.address" not in err and "Traceback" not in err and "report it" not in err
    assert not (tmp_path / "m").exists()


def test_numbers_are_cpu_amounts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert render(example_file(tmp_path, kubernetes={"galera_cpu": 1, "garbd_cpu": 0.5}), "--json") == 0
    items = json.loads(capsys.readouterr().out)["items"]
    sts = next(o for o in items if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "galera")
    garbd = next(o for o in items if o["kind"] == "Deployment")
    assert sts["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "1"
    assert garbd["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "0.5"


def test_the_yaml_has_no_anchors_or_aliases(tmp_path: Path) -> None:
    assert render(example_file(tmp_path, backups={"schedule": "02:30"}), "--out", str(tmp_path / "m")) == 0
    for path in (tmp_path / "m").glob("*.yaml"):
        events = list(yaml.parse(path.read_text()))
        assert not [e for e in events if isinstance(e, yaml.AliasEvent) or getattr(e, "anchor", None)], path.name


def test_a_pod_view_the_profile_makes_invalid_names_the_users_settings() -> None:
    """Whatever slips past the section's own checks: the re-validated pod view's error names kubernetes.namespace
    and kubernetes.cluster_domain, not nodes.0.address."""
    from tests.unit.k8s_example import example_profile
    from wizard.k8s.topology import K8sError, validate_view

    profile = example_profile()
    data = profile.model_dump(mode="json")
    data["nodes"][0]["address"] = "galera-0..bad"
    with pytest.raises(K8sError) as err:
        validate_view(data, profile)
    assert str(err.value).startswith("kubernetes.namespace 'studio-cluster' / kubernetes.cluster_domain")
    assert "use shorter DNS labels" in str(err.value)
