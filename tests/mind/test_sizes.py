"""The one parser of memory sizes (mind.sizes): Docker's binary units, decimals, no bare numbers."""

import subprocess
import sys

import pytest

from mind.sizes import SizeError, docker_size, format_size, parse_size, parse_sizes
from mind_helpers import SERVICES

MiB = 1 << 20


@pytest.mark.parametrize(
    "text, expected",
    [
        ("700m", 700 * MiB),
        ("1g", 1 << 30),
        ("1.5g", 3 << 29),
        ("480MiB", 480 * MiB),
        ("480mb", 480 * MiB),
        ("512k", 512 << 10),
        ("524288000b", 524288000),
        (" 2G ", 2 << 30),
        ("1t", 1 << 40),
        ("0.5k", 512),
    ],
)
def test_sizes_are_read_in_dockers_binary_units(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["7zz", "", "m", "-5m", "0m", "1.2.3g", "700 megs", "512ib", "1p"])
def test_what_is_not_a_size_is_refused_with_examples(text):
    with pytest.raises(SizeError, match="memory size"):
        parse_size(text)


@pytest.mark.parametrize("text", ["700", "524288000", "0"])
def test_a_bare_number_is_refused_and_the_message_says_what_docker_would_make_of_it(text):
    with pytest.raises(SizeError, match=f"has no unit \\(Docker would read it as {text} bytes\\); write {text}m"):
        parse_size(text)


def test_a_list_of_sizes_is_comma_separated():
    assert parse_sizes("450m,500m, 550m") == [450 * MiB, 500 * MiB, 550 * MiB]
    with pytest.raises(SizeError, match="no memory sizes"):
        parse_sizes(",")


def test_sizes_for_people_and_for_docker():
    assert [format_size(n) for n in (None, 700 * MiB, 3 << 29)] == ["-", "700.0 MiB", "1.50 GiB"]
    assert [docker_size(n) for n in (2 << 30, 3 << 29, 512 << 10, 1000)] == ["2g", "1536m", "512k", "1000b"]
    for text in ("1.5g", "700m", "0.3m", "1000b"):  # what docker_size writes reads back the same
        assert parse_size(docker_size(parse_size(text))) == parse_size(text)


def test_python_m_mind_sizes_prints_the_docker_form_or_refuses_with_status_2():
    def run(arg):
        return subprocess.run(
            [sys.executable, "-m", "mind.sizes", arg],
            capture_output=True,
            text=True,
            env={"PYTHONPATH": str(SERVICES)},
            timeout=30,
        )

    ok = run("1.5g")
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "1536m\n", "")
    bad = run("700")
    assert bad.returncode == 2 and bad.stdout == "" and "has no unit" in bad.stderr
