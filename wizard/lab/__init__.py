"""The local three-host lab: studio1, studio2 and arbiter as namespace "hosts", plus Redis and PowerDNS.

Everything lives on the lab network 198.18.0.0/24 (a bridge in the root namespace); no lab host has a
default route, so nothing in the lab can talk to anything but the lab.

* ``scbr0`` (198.18.0.1/24) in the root namespace: the wizard reaches every host through it.
* ``sc-studio1``, ``sc-studio2``, ``sc-arbiter``: a network namespace each, and inside it a tiny init
  (``wizard/labhost_init.py``) as PID 1 of private pid/mount/uts/ipc namespaces.  The init bind-mounts
  the host's private ``/etc/mysql``, ``/var/lib/mysql``, ``/run``, ``/var/log``, ``/root``, ``/etc/ssh``,
  ``/etc/hosts``, ``/etc/hostname``, ``/etc/resolv.conf`` and ``/tmp`` (all under ``LAB_DIR/hosts/<name>/``)
  and reaps orphans.  Each host runs its own sshd; MariaDB is installed (the machine's binaries and a
  freshly initialised datadir) but not started.  Each host also runs a Redis and a Sentinel
  (``wizard/labredis.py``: one master, two replicas, quorum 2), the coordination store of ``profiles/lab.yaml``.
* ``sc-infra`` (198.18.0.2, network namespace only): a single Redis on 6379 with a password (for profiles
  with ``redis.url``), and PowerDNS
  serving ``lab.test`` with a LUA ``ifurlup`` record for ``studio.lab.test`` from a gsqlite3 database
  (so its HTTP API on :8081, key in ``secrets/pdns_api_key``, can edit the zone).

Kept across ``down``: the lab client key, the secrets and the template datadir.  Everything else
(``hosts/``, ``infra/``, ``known_hosts``) is per run and removed by ``down``.

The package's modules are its jobs: :mod:`~wizard.lab.layout` (names, addresses, directories),
:mod:`~wizard.lab.processes`, :mod:`~wizard.lab.netns`, :mod:`~wizard.lab.infra` (Redis, PowerDNS),
:mod:`~wizard.lab.hosts`, :mod:`~wizard.lab.state`, :mod:`~wizard.lab.lifecycle` (up, down, the
command) and :mod:`~wizard.lab.faults`.  Everything is re-exported here: ``from wizard import lab``
then ``lab.up()``, ``lab.host_exec(...)``.
"""

from __future__ import annotations

from wizard.lab.faults import (  # noqa: F401
    LAB_IFACE,
    _iptables,
    _mounted_over,
    _partition_rules,
    block_port,
    clear_faults,
    heal,
    hide_binary,
    partition,
    unblock_port,
    unhide_binary,
)
from wizard.lab.hosts import (  # noqa: F401
    HOST_ENV,
    _await_host,
    _await_sshd,
    _gen_host_key,
    _host_proc_alive,
    _hosts_file,
    _init_pid,
    _is_host_init,
    _prepare_host,
    _ssh_ready,
    _sshd_alive,
    _sshd_config,
    _sshd_host_pid,
    _start_host,
    _start_sshd_now,
    host_exec,
    host_spawn,
    regenerate_host_key,
    require_init_pid,
    start_sshd,
    stop_sshd,
    write_known_hosts,
)
from wizard.lab.infra import (  # noqa: F401
    _await_pdns,
    _await_redis,
    _load_zone,
    _pdns_conf,
    _pdns_control,
    _pdns_ok,
    _pdns_pid,
    _redis_conf,
    _redis_ok,
    _redis_pid,
    _start_pdns_now,
    _start_redis_now,
    _zone_serial,
    dns_query,
    dns_query_at,
    pdns_api_key,
    pdns_api_url,
    pdns_conf,
    redis_conf,
    redis_password,
    redis_ping,
    set_authoring_record,
    sst_password,
    start_redis,
    stop_redis,
    write_zone,
)
from wizard.lab.layout import (  # noqa: F401
    AUTHORING_NAME,
    BRIDGE,
    BRIDGE_ADDR,
    DEFAULT_AUTHORING,
    DNS_PORT,
    FAULT_COMMENT,
    HEALTH_PORT,
    HIDDEN_EMPTY,
    HOSTS,
    INFRA,
    INIT_SCRIPT,
    LAB_DIR,
    NET,
    NETNS_PREFIX,
    PDNS_API_PORT,
    PDNS_SCHEMA,
    PREFIX_LEN,
    PRIVATE_PATHS,
    REDIS_PORT,
    SSH_PORT,
    SYSTEM_PYTHON,
    VETH_PREFIX,
    ZONE,
    LabCommandError,
    LabError,
    Net,
    Progress,
    _check_host,
    _netns_path,
    host_dir,
    host_path,
    infra_dir,
    key_path,
    known_hosts_path,
    netns_name,
    secret_path,
    ssh_options,
    template_datadir,
)
from wizard.lab.lifecycle import (  # noqa: F401
    _build,
    _check_no_mounts_under_lab,
    _ensure_persistent,
    _lab_pids_from_files,
    _lock,
    _repair,
    _stray_helpers,
    _teardown,
    down,
    lab_command,
    main,
    up,
)
from wizard.lab.netns import (  # noqa: F401
    _build_network,
    _in_netns,
    _lab_netns_present,
    _netns_ident,
    _netns_pids,
    _pids_in_net_ident,
    build_network,
)
from wizard.lab.processes import (  # noqa: F401
    _kill_pidfile,
    _link_exists,
    _nspid,
    _pid_alive,
    _proc_state,
    _read_pid,
    _run,
    _spawn_root,
    _tail,
    _tcp_banner,
    _tcp_refused,
    _unescape,
    _wait_for,
    _write,
    file_lock,
    ssh_ready,
    write_known_hosts_file,
)
from wizard.lab.state import (  # noqa: F401
    HostStatus,
    LabStatus,
    status,
)
