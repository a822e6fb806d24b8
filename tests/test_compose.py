"""The Docker deployment: docker-compose.yml, the Dockerfile and .dockerignore.

Offline and without a Docker engine: the compose file is checked against the Compose
Specification's JSON schema, committed under ``tests/data/compose`` (its README names the
package and version it came from), and against the properties the deployment relies on.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = Path(__file__).parent / "data" / "compose" / "compose-spec.json"
COMPOSE_PATH = ROOT / "docker-compose.yml"
MMRAG_SERVICES = ("api", "worker")
HEALTHCHECKED = ("qdrant", "redis", "postgres", "api")
SHARED_SETTINGS = {
    "MMRAG_DATA_DIR",
    "MMRAG_STORE__QDRANT_URL",
    "MMRAG_QUEUE__URL",
    "MMRAG_CATALOG__URL",
    "MMRAG_BLOBS__ROOT",
    "MMRAG_API__KEYS",
    "HF_HOME",
}
# ${NAME}, ${NAME:-default} and ${NAME-default}, as Compose interpolates them.
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")
COMMENTED_SETTING = re.compile(r"^(\s*)# (MMRAG_\w+: .*)$", re.MULTILINE)


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_PATH.read_text(encoding="utf-8"))


def schema_errors(validator: jsonschema.protocols.Validator, document: Any) -> list[str]:
    return [
        f"{'.'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def interpolate(value: str) -> str:
    """The value with every ``${NAME:-default}`` replaced by its default (no environment)."""
    return INTERPOLATION.sub(lambda match: match.group(2) or "", value)


def environment(service: dict[str, Any]) -> dict[str, str]:
    return {name: interpolate(str(value)) for name, value in service["environment"].items()}


# -- docker-compose.yml ----------------------------------------------------------------


def test_compose_file_follows_the_compose_spec(validator, compose):
    assert schema_errors(validator, compose) == []


def test_the_schema_catches_a_misspelled_key(validator, compose):
    # The schema is strict enough to be worth checking against.
    broken = copy.deepcopy(compose)
    broken["services"]["api"]["healthchek"] = broken["services"]["api"].pop("healthcheck")
    assert schema_errors(validator, broken)


def test_every_image_is_pinned(compose):
    for name, service in compose["services"].items():
        image = interpolate(service["image"])
        reference = image.split("@")[0]
        repository, _, tag = reference.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest", f"{name}: {image} floats"


def test_every_service_restarts_unless_stopped(compose):
    for name, service in compose["services"].items():
        assert service.get("restart") == "unless-stopped", name


def test_servers_and_api_report_health(compose):
    for name in HEALTHCHECKED:
        test = compose["services"][name]["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL"), name


def test_dependencies_wait_until_healthy(compose):
    services = compose["services"]
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on without conditions"
        for dependency, condition in depends_on.items():
            assert condition["condition"] == "service_healthy", f"{name} -> {dependency}"
            assert "healthcheck" in services[dependency], dependency
    assert set(services["api"]["depends_on"]) == {"qdrant", "redis", "postgres"}


def test_workers_can_scale(compose):
    worker = compose["services"]["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    assert "scale" not in worker
    assert worker["command"] == ["mmrag", "worker"]


def test_api_and_worker_share_image_settings_and_volumes(compose):
    api, worker = (compose["services"][name] for name in MMRAG_SERVICES)
    assert api["image"] == worker["image"]
    assert environment(api) == environment(worker)
    assert not SHARED_SETTINGS - set(environment(api))
    assert api["volumes"] == worker["volumes"]
    assert api["command"] == ["mmrag", "serve"]


def test_settings_point_at_the_services_and_volumes(compose):
    settings = environment(compose["services"]["api"])
    services = compose["services"]
    for name, scheme in [
        ("MMRAG_STORE__QDRANT_URL", "http"),
        ("MMRAG_QUEUE__URL", "redis"),
        ("MMRAG_CATALOG__URL", "postgresql+psycopg"),
    ]:
        url = urlsplit(settings[name])
        assert url.scheme == scheme, name
        assert url.hostname in services, name
    mounts = dict(reversed(mount.split(":")[:2]) for mount in services["api"]["volumes"])
    assert mounts[settings["MMRAG_DATA_DIR"]] == "data"
    assert mounts[settings["MMRAG_BLOBS__ROOT"]] == "data"
    assert mounts[settings["HF_HOME"]] == "models"
    postgres = environment(services["postgres"])
    catalog = urlsplit(settings["MMRAG_CATALOG__URL"])
    assert catalog.username == postgres["POSTGRES_USER"]
    assert catalog.password == postgres["POSTGRES_PASSWORD"]
    assert catalog.path == f"/{postgres['POSTGRES_DB']}"


def test_named_volumes_are_declared(compose):
    for name, service in compose["services"].items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in compose["volumes"], f"{name}: {source}"


def test_only_the_gpu_profile_reserves_a_gpu(compose):
    for name, service in compose["services"].items():
        devices = service.get("deploy", {}).get("resources", {}).get("reservations", {})
        devices = devices.get("devices", [])
        if "gpu" in service.get("profiles", []):
            assert any(
                device["driver"] == "nvidia" and "gpu" in device["capabilities"]
                for device in devices
            ), name
        else:
            assert not devices, f"{name} would not start on a machine without a GPU"
    assert "gpu" in compose["services"]["vllm"]["profiles"]


def test_gpu_settings_uncommented_reach_vllm(validator):
    """The commented answerer and captioner settings, once uncommented, are valid and name
    the vllm service and the model it serves."""
    text = COMMENTED_SETTING.sub(r"\1\2", COMPOSE_PATH.read_text(encoding="utf-8"))
    compose = yaml.safe_load(text)
    assert schema_errors(validator, compose) == []
    services = compose["services"]
    served_model = services["vllm"]["command"][0]
    settings = environment(services["api"])
    assert settings == environment(services["worker"])
    for role in ("ANSWERER", "CAPTIONER"):
        assert settings[f"MMRAG_{role}__BACKEND"] == "openai"
        assert settings[f"MMRAG_{role}__MODEL"] == served_model
        base_url = urlsplit(settings[f"MMRAG_{role}__BASE_URL"])
        assert (base_url.hostname, base_url.port, base_url.path) == ("vllm", 8000, "/v1")


# -- Dockerfile ------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            instructions.append((keyword.upper(), " ".join(arguments.split())))
    return instructions


def index_of(instructions: list[tuple[str, str]], keyword: str, fragment: str = "") -> int:
    for index, (instruction, arguments) in enumerate(instructions):
        if instruction == keyword and fragment in arguments:
            return index
    raise AssertionError(f"no {keyword} {fragment!r} in the Dockerfile")


def test_volume_directories_belong_to_the_runtime_user_before_volume():
    instructions = dockerfile_instructions()
    user = instructions[index_of(instructions, "USER")][1]
    assert user not in ("root", "0") and not user.startswith("0:")
    useradd = instructions[index_of(instructions, "RUN", "useradd")][1]
    uid = re.search(r"--uid (\d+)", useradd)
    assert uid and uid.group(1) == "1000" and re.search(rf"\b{re.escape(user)}\b", useradd)
    volume = index_of(instructions, "VOLUME")
    assert json.loads(instructions[volume][1]) == ["/data", "/models"]
    prepare = index_of(instructions, "RUN", "mkdir -p /data /models")
    owner = re.search(r"chown (\S+) /data /models", instructions[prepare][1])
    assert owner and owner.group(1).split(":")[0] in (user, "1000")
    assert prepare < volume
    assert index_of(instructions, "USER") < volume


def stages(instructions: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """The instructions of each build stage, its FROM first."""
    starts = [index for index, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    return [instructions[start:end] for start, end in zip(starts, [*starts[1:], None], strict=True)]


def test_dependencies_install_in_a_layer_of_their_own():
    """The install layer depends only on the dependency list, so a source edit (or a new
    version number) reuses it."""
    requirements_stage, final_stage = stages(dockerfile_instructions())
    assert requirements_stage[0] == ("FROM", "python:3.11-slim AS requirements")
    assert [arguments for keyword, arguments in requirements_stage if keyword == "COPY"] == [
        "pyproject.toml /"
    ]
    dependencies = index_of(final_stage, "RUN", "-r /tmp/requirements.txt")
    copies = [arguments for keyword, arguments in final_stage[:dependencies] if keyword == "COPY"]
    assert copies == ["--from=requirements /requirements.txt /tmp/requirements.txt"]
    sources = index_of(final_stage, "COPY", "mmrag mmrag")
    package = index_of(final_stage, "RUN", "pip install --no-deps .")
    assert dependencies < sources < package


def test_the_dependency_list_read_in_the_image_is_pyprojects():
    instructions = dockerfile_instructions()
    run = instructions[index_of(instructions, "RUN", "tomllib")][1]
    words = shlex.split(run)
    code = words[words.index("-c") + 1].replace("/pyproject.toml", str(ROOT / "pyproject.toml"))
    printed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert printed == pyproject["project"]["dependencies"]


def test_the_image_serves_the_api_by_default_and_checks_nothing_itself():
    instructions = dockerfile_instructions()
    final_stage = stages(instructions)[-1]
    assert final_stage[0] == ("FROM", "python:3.11-slim")
    assert json.loads(final_stage[index_of(final_stage, "CMD")][1]) == ["mmrag", "serve"]
    assert "MMRAG_API__HOST=0.0.0.0" in final_stage[index_of(final_stage, "ENV", "HOST")][1]
    # A HEALTHCHECK would be inherited by the workers, which serve no HTTP.
    assert all(keyword != "HEALTHCHECK" for keyword, _ in instructions)


# -- .dockerignore ---------------------------------------------------------------------


def ignore_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex: ``**`` crosses directories, ``*`` does not."""
    parts, index = [], 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            parts.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            parts.append(".*")
            index += 2
        elif pattern[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            parts.append("[^/]")
            index += 1
        elif pattern[index] == "[":
            end = pattern.index("]", index)
            parts.append(pattern[index : end + 1])
            index = end + 1
        else:
            parts.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(parts) + "$")


def in_build_context(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    rules = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    segments = path.split("/")
    prefixes = ["/".join(segments[: count + 1]) for count in range(len(segments))]
    included = True
    for rule in rules:
        negated = rule.startswith("!")
        regex = ignore_regex(rule.removeprefix("!").strip("/"))
        if any(regex.match(prefix) for prefix in prefixes):
            included = negated
    return included


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        ".env",
        "data/catalog.sqlite",
        ".mmrag/qdrant/collection",
        "bench-out/report.json",
        "tests/test_compose.py",
        "docs/deployment.md",
        "mmrag.egg-info/PKG-INFO",
        "mmrag/__pycache__/settings.cpython-311.pyc",
    ],
)
def test_dockerignore_keeps_out(path):
    assert not in_build_context(path)


def test_dockerignore_keeps_what_the_dockerfile_copies():
    instructions = dockerfile_instructions()
    for keyword, arguments in instructions:
        if keyword == "COPY" and not arguments.startswith("--from"):
            for source in arguments.split()[:-1]:
                assert in_build_context(source), source
    for path in ["mmrag/__init__.py", "api/app.py", "ingest/cli.py", "eval/__init__.py"]:
        assert in_build_context(path), path
