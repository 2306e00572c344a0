"""The command palette's actions use the secrets the person typed in the session (issue 11 newcomer findings).

Before, `studio-cluster status` from the palette ran with its stdin closed, so a profile whose secrets are
``ask`` failed with "no terminal to ask on" although the person had typed them on the secrets screen.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from textual.widgets import TextArea

from tests.tui.conftest import profile_data
from tests.tui.test_snapshots import settle
from tests.tui.test_wizard_flow import palette_command_output
from wizard.tui.app import WizardApp, create_app
from wizard.tui.commands import session_secrets


@pytest.fixture
def app(tmp_path: Path) -> WizardApp:
    return create_app(profiles_dir=tmp_path / "profiles", runs_dir=tmp_path / "runs")


def dead_cluster(tmp_path: Path) -> Path:
    """A profile whose nodes refuse SSH at once, with its read-only secrets set to 'ask'."""
    data = profile_data()
    for i, node in enumerate(data["nodes"]):
        node["address"] = f"127.0.0.{i + 1}"
        node["ssh"].update(port=1, connect_timeout=1)
    data["dns"].update(servers=["127.0.0.1"], port=1)
    data["redis"] = {"url": "redis://127.0.0.1:1/0", "password": "ask"}
    data["database"] = {"sst_password": "ask", "admin_password": "ask"}
    path = tmp_path / "asks.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


async def test_palette_status_uses_the_secrets_typed_in_the_session(app: WizardApp, tmp_path: Path) -> None:
    path = dead_cluster(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.session.profile_path = path
        app.session.typed = {"admin_password": "typed-admin-9f3", "redis_password": "typed-redis-9f3"}
        view = await palette_command_output(pilot, "cluster status")
        text = view.query_one("#view-text", TextArea).text
        assert "no terminal to ask on" not in text, text
        assert view.exit_code == 1, text  # it ran: the nodes are unreachable (exit 2 was the missing secrets)
        assert "unreachable" in text, text
        assert "typed-admin-9f3" not in text and "typed-redis-9f3" not in text
        assert "typed-" not in " ".join(view.argv)  # never on the command line


def test_secrets_go_only_to_the_sessions_own_profile(app: WizardApp, tmp_path: Path) -> None:
    from wizard.secrets import Secrets

    own, other = tmp_path / "own.yaml", tmp_path / "other.yaml"
    app.session.saved_path = own
    app.session.typed = {"admin_password": "typed"}
    app.session.secrets = Secrets("sst", "resolved-admin", None, key_passphrases={"studio1": "pp"})
    assert session_secrets(app, own) == {"admin_password": "typed", "sst_password": "sst",
                                         "key_passphrase:studio1": "pp"}
    assert session_secrets(app, other) == {}
