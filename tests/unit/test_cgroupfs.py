"""Finding the server's memory cgroup from the text of /proc/self/cgroup and
/proc/self/mountinfo (samples of real machines: cgroup v1 with a hybrid unified mount,
a pure v2 systemd host, a container with a cgroup namespace), and the files each
version names. The cgroups themselves are tested for real in
tests/integration/test_memory_cgroup.py."""

from __future__ import annotations

from pathlib import Path

from taskyard.server import cgroupfs
from taskyard.server.cgroupfs import V1, V2, Place

V1_CGROUP = """\
9:name=systemd:/
4:memory:/process_api/1ea91fd27465
2:cpuacct:/
1:cpu:/
0::/
"""
V1_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
V2_CGROUP = "0::/system.slice/taskyard.service\n"
V2_MOUNTINFO = """\
22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
"""
#: a container with a cgroup namespace: its cgroup is "/" and the mount's root too
NS_CGROUP = "0::/\n"
NS_MOUNTINFO = "612 600 0:30 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw\n"
#: the host's hierarchy bind-mounted: the mount shows /docker/abc, the process is below
BIND_CGROUP = "0::/docker/abc/job\n"
BIND_MOUNTINFO = r"612 600 0:30 /docker/abc /mnt/my\040cgroups rw - cgroup2 cgroup2 rw" + "\n"


def test_own_cgroups_by_controller() -> None:
    assert cgroupfs.own_cgroups(V1_CGROUP) == {
        "name=systemd": "/", "memory": "/process_api/1ea91fd27465", "cpuacct": "/",
        "cpu": "/", "": "/"}
    assert cgroupfs.own_cgroups("garbage\n\n0::/a:b\n") == {"": "/a:b"}


def test_cgroup_mounts_are_read_with_their_controllers() -> None:
    mounts = cgroupfs.cgroup_mounts(V1_MOUNTINFO)
    assert [(m.point, m.fstype) for m in mounts] == [
        ("/sys/fs/cgroup/cpu", "cgroup"), ("/sys/fs/cgroup/memory", "cgroup"),
        ("/sys/fs/cgroup/systemd", "cgroup"), ("/sys/fs/cgroup/unified", "cgroup2")]
    assert "memory" in mounts[1].options
    (escaped,) = cgroupfs.cgroup_mounts(BIND_MOUNTINFO)
    assert escaped.point == "/mnt/my cgroups" and escaped.root == "/docker/abc"


def test_v1_hybrid_offers_the_unified_root_then_the_memory_hierarchy() -> None:
    assert cgroupfs.places(V1_CGROUP, V1_MOUNTINFO) == [
        Place(V2, Path("/sys/fs/cgroup/unified"), True),
        Place(V1, Path("/sys/fs/cgroup/memory/process_api/1ea91fd27465"), False)]


def test_v2_places() -> None:
    assert cgroupfs.places(V2_CGROUP, V2_MOUNTINFO) == [
        Place(V2, Path("/sys/fs/cgroup/system.slice/taskyard.service"), False)]
    assert cgroupfs.places(NS_CGROUP, NS_MOUNTINFO) == [Place(V2, Path("/sys/fs/cgroup"), True)]
    assert cgroupfs.places(BIND_CGROUP, BIND_MOUNTINFO) == [
        Place(V2, Path("/mnt/my cgroups/job"), False)]
    # a cgroup outside what the mount shows cannot be used
    assert cgroupfs.places("0::/other\n", BIND_MOUNTINFO) == []
    assert cgroupfs.places(V2_CGROUP, "") == []


def test_only_paths_in_a_cgroup_mount_are_cgroups() -> None:
    inside = Path("/sys/fs/cgroup/memory/x/taskyard-1")
    assert cgroupfs.is_cgroup_dir(inside, V1_MOUNTINFO)
    assert not cgroupfs.is_cgroup_dir(Path("/home/me/taskyard-1"), V1_MOUNTINFO)
    assert not cgroupfs.is_cgroup_dir(Path("/sys/fs/cgroup/memory/../../../etc"),
                                      V1_MOUNTINFO)


def test_what_each_version_names_and_counts(tmp_path: Path) -> None:
    assert (V2.limit, V2.peak, V2.swap_value(1 << 20)) == ("memory.max", "memory.peak", "0")
    assert (V1.limit, V1.swap_value(1 << 20)) == ("memory.limit_in_bytes", str(1 << 20))
    events = tmp_path / "memory.events"
    events.write_text("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n")
    assert cgroupfs.count(events, "oom_kill") == 1
    control = tmp_path / "memory.oom_control"
    control.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    assert cgroupfs.count(control, "oom_kill") == 3
    assert cgroupfs.count(tmp_path / "missing", "oom_kill") == 0
    (tmp_path / "peak").write_text("67108864\n")
    (tmp_path / "max").write_text("max\n")
    assert cgroupfs.read_int(tmp_path / "peak") == 64 << 20
    assert cgroupfs.read_int(tmp_path / "max") is None
