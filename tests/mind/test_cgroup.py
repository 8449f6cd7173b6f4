from mind.cgroup import CgroupMemory


def write(path, **files):
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name.replace("__", ".")).write_text(text)


def test_v1_reads_usage_without_page_cache_and_the_hierarchical_limit(tmp_path):
    d = tmp_path / "memory" / "mind"
    write(
        d,
        memory__usage_in_bytes="1000000\n",
        memory__limit_in_bytes="9223372036854771712\n",
        memory__max_usage_in_bytes="1200000\n",
        memory__stat="cache 5\ntotal_inactive_file 100000\ntotal_active_file 50000\n"
        "hierarchical_memory_limit 4000000\n",
        memory__oom_control="oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    )
    r = CgroupMemory(tmp_path, proc_cgroup="4:memory:/mind\n0::/\n").read()
    assert (r.version, r.memory_bytes, r.peak_bytes, r.limit_bytes, r.oom_kills) == (1, 850000, 1200000, 4000000, 2)
    assert r.limit_in_force


def test_v1_huge_limit_means_no_limit_in_force(tmp_path):
    write(
        tmp_path / "memory",
        memory__usage_in_bytes="10\n",
        memory__limit_in_bytes="9223372036854771712\n",
        memory__stat="hierarchical_memory_limit 9223372036854771712\n",
    )
    r = CgroupMemory(tmp_path, proc_cgroup="4:memory:/docker/abc\n").read()  # namespaced: mount is ours
    assert r.memory_bytes == 10 and r.limit_bytes is None and not r.limit_in_force


def test_v2_reads_current_max_events_and_the_smallest_limit_upwards(tmp_path):
    write(tmp_path, cgroup__controllers="memory\n", memory__max="3000000\n")
    d = tmp_path / "system.slice" / "mind"
    write(tmp_path / "system.slice", cgroup__controllers="memory\n", memory__max="max\n", memory__current="1\n")
    write(
        d,
        cgroup__controllers="memory\n",
        memory__current="2000000\n",
        memory__max="5000000\n",
        memory__stat="anon 1500000\nfile 300000\n",
        memory__events="low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        memory__peak="2500000\n",
    )
    r = CgroupMemory(tmp_path, proc_cgroup="0::/system.slice/mind\n").read()
    assert (r.version, r.memory_bytes, r.peak_bytes, r.limit_bytes, r.oom_kills) == (2, 1700000, 2500000, 3000000, 1)


def test_v2_max_everywhere_is_no_limit(tmp_path):
    write(tmp_path, cgroup__controllers="memory\n", memory__current="123\n", memory__max="max\n")
    r = CgroupMemory(tmp_path, proc_cgroup="0::/\n").read()
    assert r.version == 2 and r.memory_bytes == 123 and not r.limit_in_force


def test_no_memory_cgroup_at_all_reports_nothing_and_no_limit(tmp_path):
    r = CgroupMemory(tmp_path, proc_cgroup="").read()
    assert r.version is None and r.memory_bytes is None and not r.limit_in_force


def test_this_machine_has_a_readable_memory_cgroup():
    r = CgroupMemory().read()
    assert r.version in (1, 2) and r.memory_bytes and r.memory_bytes > 0


def test_v2_pressure_reads_limit_hits_from_events_and_psi_averages(tmp_path):
    write(tmp_path, cgroup__controllers="memory\n", memory__max="max\n")
    write(
        tmp_path / "mind",
        cgroup__controllers="memory\n",
        memory__current="2000000\n",
        memory__events="low 0\nhigh 4\nmax 1234\noom 0\noom_kill 0\n",
        memory__pressure="some avg10=12.50 avg60=3.10 avg300=0.80 total=123456\n"
        "full avg10=7.25 avg60=1.00 avg300=0.20 total=65432\n",
    )
    p = CgroupMemory(tmp_path, proc_cgroup="0::/mind\n").pressure()
    assert (p.limit_hits, p.refaults, p.some_avg10, p.full_avg10) == (1234, None, 12.5, 7.25)


def test_v2_pressure_without_psi_still_counts_limit_hits(tmp_path):
    # A kernel without PSI (or booted psi=0) has no memory.pressure, or one that cannot be read.
    write(
        tmp_path,
        cgroup__controllers="memory\n",
        memory__current="1\n",
        memory__events="max 9\n",
        memory__stat="anon 1\nworkingset_refault_anon 5\nworkingset_refault_file 70\n",
    )
    p = CgroupMemory(tmp_path, proc_cgroup="0::/\n").pressure()
    assert (p.limit_hits, p.refaults, p.some_avg10, p.full_avg10) == (9, 75, None, None)


def test_v1_pressure_adds_the_memory_and_memsw_failure_counts(tmp_path):
    # With memswap limited as the memory is, a charge at the limit can fail on either counter.
    d = tmp_path / "memory" / "mind"
    write(
        d,
        memory__usage_in_bytes="10\n",
        memory__failcnt="3\n",
        memory__memsw__failcnt="40\n",
        # hierarchical counters first (total_*); a kernel before 5.9 has one refault counter
        memory__stat="workingset_refault 2\ntotal_workingset_refault 6\n",
    )
    p = CgroupMemory(tmp_path, proc_cgroup="4:memory:/mind\n").pressure()
    assert (p.limit_hits, p.refaults, p.some_avg10, p.full_avg10) == (43, 6, None, None)
    (d / "memory.memsw.failcnt").unlink()  # no swap accounting on this kernel
    assert CgroupMemory(tmp_path, proc_cgroup="4:memory:/mind\n").pressure().limit_hits == 3


def test_no_cgroup_has_no_pressure_to_read(tmp_path):
    p = CgroupMemory(tmp_path, proc_cgroup="").pressure()
    assert (p.limit_hits, p.refaults, p.some_avg10, p.full_avg10) == (None, None, None, None)


def test_the_tests_make_their_memory_cgroups_on_a_v2_host_in_a_delegated_subtree(tmp_path, monkeypatch):
    # Only cgroup v1 can be exercised on this project's machines: the v2 path of the tests' own helper
    # (mind_helpers.memory_cgroup) against files laid out as a delegated v2 subtree.
    import mind_helpers

    delegated = tmp_path / "delegated"
    write(delegated, cgroup__controllers="cpu io memory pids\n", cgroup__subtree_control="cpu\n")
    monkeypatch.setattr(mind_helpers, "CGROUP_V1_MEMORY", tmp_path / "no-v1-here")
    monkeypatch.setattr(mind_helpers, "CGROUP_ROOT", tmp_path / "not-writable-root")
    monkeypatch.setenv(mind_helpers.CGROUP_V2_PARENT_ENV, str(delegated))
    assert mind_helpers.memory_cgroup_version() == 2
    with mind_helpers.memory_cgroup("mind-test") as cg:
        assert cg.version == 2 and cg.path.parent == delegated
        assert (delegated / "cgroup.subtree_control").read_text().split() == ["+memory"]  # what we wrote
        write(cg.path, cgroup__procs="", memory__swap__max="max\n")  # the kernel makes these
        cg.set_limit(256 << 20)
        assert (cg.path / "memory.max").read_text() == str(256 << 20)
        assert (cg.path / "memory.swap.max").read_text() == "0"  # no swap: the OOM comes promptly
        assert cg.join(["python", "-m", "mind"])[:3] == ["sh", "-c", f'echo $$ > {cg.path}/cgroup.procs && exec "$@"']
        write(
            cg.path,
            memory__events="low 0\nhigh 0\nmax 17\noom 2\noom_kill 1\n",
            memory__stat="anon 5\nworkingset_refault_anon 3\nworkingset_refault_file 40\n",
        )
        assert (cg.oom_kills(), cg.limit_hits(), cg.refaults()) == (1, 17, 43)
        for name in ("memory.max", "memory.swap.max", "memory.events", "memory.stat", "cgroup.procs"):
            (cg.path / name).unlink()  # the kernel's files go with the directory; these are ours
    assert not cg.path.exists()


def test_without_v1_or_a_writable_v2_parent_the_tests_cannot_make_a_memory_cgroup(tmp_path, monkeypatch):
    import mind_helpers

    write(tmp_path / "root", cgroup__controllers="cpu io pids\n", cgroup__subtree_control="\n")  # no memory
    monkeypatch.setattr(mind_helpers, "CGROUP_V1_MEMORY", tmp_path / "no-v1-here")
    monkeypatch.setattr(mind_helpers, "CGROUP_ROOT", tmp_path / "root")
    monkeypatch.delenv(mind_helpers.CGROUP_V2_PARENT_ENV, raising=False)
    assert mind_helpers.memory_cgroup_version() is None and not mind_helpers.can_make_memory_cgroup()
