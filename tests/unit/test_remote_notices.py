"""wizard.remote's transport answers the server's notices (sshd's hostkeys-00) through a private paramiko hook:
this guards that the hook is still there and still takes the message, so an upgrade of paramiko that drops or
renames it shows here rather than as ~40 ms more per SSH connection (or a broken transport)."""

from __future__ import annotations

import inspect

import paramiko

from wizard import remote


def test_paramiko_still_has_the_global_request_hook() -> None:
    hook = getattr(paramiko.Transport, "_parse_global_request", None)
    assert callable(hook), "paramiko.Transport._parse_global_request is gone: revisit wizard.remote._Transport"
    params = list(inspect.signature(hook).parameters)
    assert params[:2] == ["self", "m"], params


def test_the_product_transport_overrides_it() -> None:
    assert issubclass(remote._Transport, paramiko.Transport)
    assert "_parse_global_request" in vars(remote._Transport)
