"""latent's view of an installation (scripts/latent/project.py): .env read as Compose reads it and written back
without disturbing the maker's lines; the mind service as either Compose version prints it (sizes in bytes or
in Docker's units, mounts in the short or the long syntax); the project's own containers only."""

from __future__ import annotations

import pytest

from latent import CliError
from latent.project import EnvFile, find_project, mind_service, project_name, service_filter

MiB = 1 << 20


def test_env_is_read_as_compose_reads_it(tmp_path):
    path = tmp_path / ".env"
    path.write_text(
        "# a comment\n"
        "MIND_MEMORY_LIMIT=700m\n"
        "export MIND_PROMPT=entity\n"
        'MIND_MODEL_PATH="/models/extra/a b.gguf"\n'
        "MIRROR_PORT=8081 # the second mirror\n"
        "#MIND_N_THREADS=4\n"
        "MIND_MEMORY_LIMIT=900m\n"
    )
    env = EnvFile.read(path)
    assert env.values() == {
        "MIND_MEMORY_LIMIT": "900m",  # the last one wins
        "MIND_PROMPT": "entity",
        "MIND_MODEL_PATH": "/models/extra/a b.gguf",
        "MIRROR_PORT": "8081",
    }
    assert [n for n, _, _ in env.entries()] == [2, 3, 4, 5, 7]


def test_setting_a_value_changes_the_line_compose_uses_and_keeps_every_other(tmp_path):
    path = tmp_path / ".env"
    path.write_text("# mine\nMIND_MEMORY_LIMIT=700m\nMIRROR_PORT=8081\nMIND_MEMORY_LIMIT=800m\n")
    env = EnvFile.read(path)
    env.set("MIND_MEMORY_LIMIT", "1536m")
    env.set("MIND_PROMPT", "entity")
    env.write()
    assert path.read_text() == (
        "# mine\nMIND_MEMORY_LIMIT=700m\nMIRROR_PORT=8081\nMIND_MEMORY_LIMIT=1536m\nMIND_PROMPT=entity\n"
    )
    assert EnvFile.read(tmp_path / "none").values() == {}


@pytest.mark.parametrize(
    "printed",
    [
        # docker-compose 1.29: Docker's units, the short mount syntax
        {
            "image": "latent-reflection/mind:latest",
            "mem_limit": "700m",
            "environment": {"MIND_PROMPT": "entity", "MIND_N_THREADS": None},
            "volumes": [
                "/srv/lr/services/mind/prompts:/app/mind/prompts:ro",
                "/srv/lr/models:/models/extra:ro",
                "mind-state:/state:rw",
            ],
        },
        # Compose v2: bytes, the long syntax
        {
            "image": "latent-reflection/mind:latest",
            "mem_limit": "734003200",
            "environment": {"MIND_PROMPT": "entity", "MIND_N_THREADS": ""},
            "volumes": [
                {
                    "type": "bind",
                    "source": "/srv/lr/services/mind/prompts",
                    "target": "/app/mind/prompts",
                    "read_only": True,
                },
                {"type": "bind", "source": "/srv/lr/models", "target": "/models/extra", "read_only": True},
                {"type": "volume", "source": "mind-state", "target": "/state"},
            ],
        },
    ],
    ids=["docker-compose 1.29", "Compose v2"],
)
def test_the_mind_service_is_read_the_same_from_either_compose(printed):
    mind = mind_service({"services": {"mind": printed}})
    assert mind.mem_limit == 700 * MiB
    assert mind.environment == {"MIND_PROMPT": "entity", "MIND_N_THREADS": ""}
    assert [(b.source, b.target, b.read_only) for b in mind.binds] == [
        ("/srv/lr/services/mind/prompts", "/app/mind/prompts", True),
        ("/srv/lr/models", "/models/extra", True),
    ]
    assert mind.volumes == ["/state"]
    assert str(mind.host_path("/models/extra/x.gguf")) == "/srv/lr/models/x.gguf"
    assert mind.host_path("/models/default.gguf") is None  # in the image, not on this host
    assert mind.host_path("models/x.gguf") is None


def test_a_mem_limit_that_is_not_a_size_is_named():
    with pytest.raises(CliError, match="mem_limit 'lots'"):
        mind_service({"services": {"mind": {"mem_limit": "lots"}}})
    with pytest.raises(CliError, match="no service 'mind'"):
        mind_service({"services": {}})


def test_the_project_is_found_from_a_subfolder_and_named_as_compose_names_it(tmp_path, monkeypatch):
    root = tmp_path / "My Latent.Reflection"
    (root / "services" / "mind").mkdir(parents=True)
    (root / "compose.yaml").write_text("services: {}\n")
    monkeypatch.delenv("LATENT_PROJECT_DIR", raising=False)
    monkeypatch.delenv("COMPOSE_PROJECT_NAME", raising=False)
    assert find_project(start=root / "services" / "mind") == root
    assert project_name(root) == "mylatentreflection"
    (root / ".env").write_text("COMPOSE_PROJECT_NAME=latent-reflection\n")
    assert service_filter(root, "mind") == {
        "label": ["com.docker.compose.service=mind", "com.docker.compose.project=latent-reflection"]
    }
    with pytest.raises(CliError, match="no compose.yaml"):
        find_project(str(tmp_path))
    with pytest.raises(CliError, match="not in a Latent Reflection folder"):
        find_project(start=tmp_path)
