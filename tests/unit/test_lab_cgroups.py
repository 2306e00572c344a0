"""The systemd lab gives each host a cgroup of its own in every hierarchy systemd uses (pure logic)."""

from __future__ import annotations

from wizard import labsystemd

HYBRID = """\
35 30 0:30 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
36 35 0:31 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate
37 35 0:32 / /sys/fs/cgroup/systemd rw,nosuid shared:11 - cgroup cgroup rw,xattr,name=systemd
38 35 0:33 / /sys/fs/cgroup/memory rw,nosuid shared:12 - cgroup cgroup rw,memory
"""

UNIFIED = "30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"


def test_hybrid_host_uses_the_unified_tree_and_name_systemd_only() -> None:
    assert labsystemd.cgroup_hierarchies(HYBRID) == ["/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd"]


def test_unified_host_uses_the_one_tree() -> None:
    assert labsystemd.cgroup_hierarchies(UNIFIED) == ["/sys/fs/cgroup"]


def test_no_cgroups_mounted_is_no_hierarchy() -> None:
    assert labsystemd.cgroup_hierarchies("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n") == []
