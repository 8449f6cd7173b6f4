from mind.cgroup import CgroupMemory


def write(path, **files):
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name.replace("__", ".")).write_text(text)


def test_v1_reads_usage_without_page_cache_and_the_hierarchical_limit(tmp_path):
    d = tmp_path / "memory" / "mind"
    write(d, memory__usage_in_bytes="1000000\n", memory__limit_in_bytes="9223372036854771712\n",
          memory__max_usage_in_bytes="1200000\n",
          memory__stat="cache 5\ntotal_inactive_file 100000\ntotal_active_file 50000\n"
                       "hierarchical_memory_limit 4000000\n",
          memory__oom_control="oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    r = CgroupMemory(tmp_path, proc_cgroup="4:memory:/mind\n0::/\n").read()
    assert (r.version, r.memory_bytes, r.peak_bytes, r.limit_bytes, r.oom_kills) == (1, 850000, 1200000, 4000000, 2)
    assert r.limit_in_force


def test_v1_huge_limit_means_no_limit_in_force(tmp_path):
    write(tmp_path / "memory", memory__usage_in_bytes="10\n", memory__limit_in_bytes="9223372036854771712\n",
          memory__stat="hierarchical_memory_limit 9223372036854771712\n")
    r = CgroupMemory(tmp_path, proc_cgroup="4:memory:/docker/abc\n").read()  # namespaced: mount is ours
    assert r.memory_bytes == 10 and r.limit_bytes is None and not r.limit_in_force


def test_v2_reads_current_max_events_and_the_smallest_limit_upwards(tmp_path):
    write(tmp_path, cgroup__controllers="memory\n", memory__max="3000000\n")
    d = tmp_path / "system.slice" / "mind"
    write(tmp_path / "system.slice", cgroup__controllers="memory\n", memory__max="max\n", memory__current="1\n")
    write(d, cgroup__controllers="memory\n", memory__current="2000000\n", memory__max="5000000\n",
          memory__stat="anon 1500000\nfile 300000\n", memory__events="low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
          memory__peak="2500000\n")
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
