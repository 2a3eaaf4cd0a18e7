"""Every shell command of the README and of docs/ is run by a test or by CI.

The commands are read from the fenced `bash` (`sh`, `shell`, `console`) blocks of README.md and docs/*.md, one
per line (a trailing `\\` joins lines, a trailing `# comment` is dropped), and each must be in RUN_BY below: the
test node ids that run it, or the line of .ci/run that does. A command that nobody runs fails this test; so
does a registered test that no longer exists (the ids are collected by pytest), one that no longer mentions
what it runs, or a CI line that is gone. The few commands that cannot run on this project's machines (no
Docker, Kubernetes, private index or cloud credentials) are in NOT_RUN_HERE, each with its reason, and the
page that shows them says so too.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from energy_assets.app.cli import build_parser
from energy_assets_tests.conftest import REPO_ROOT

CI_SCRIPT = REPO_ROOT / ".ci" / "run"


@dataclass(frozen=True)
class ByTests:
    """Test node ids that run the command, and a string each test's module must hold (what it runs)."""

    node_ids: tuple[str, ...]
    evidence: str


@dataclass(frozen=True)
class ByCI:
    """.ci/run runs the command: a line of the script starts with it."""


DEMO = "energy_assets_tests/test_demo.py::"
PRODUCTION = "energy_assets_tests/test_production_deployment.py::"
PRODUCTION_TESTS = ByTests(
    (f"{PRODUCTION}test_backfill_through_the_webserver_writes_the_bucket_and_postgres",
     f"{PRODUCTION}test_the_daemon_launches_the_hourly_schedule_from_a_tick"),
    "deploy",
)
ENV_FILE_TEST = ByTests(
    ("energy_assets_tests/test_docs_commands.py::test_the_env_default_copied_to_env_loads_the_local_deployment",),
    "set -a && . ./.env && set +a",
)

RUN_BY: dict[str, ByTests | ByCI] = {
    # README: the two set-up commands (CI runs (b) verbatim; (a) is the demo the test runs from the repository).
    "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/energy-assets demo": ByTests(
        (f"{DEMO}test_the_demo_fills_the_newest_published_hours_quietly",
         f"{DEMO}test_after_the_demo_every_asset_has_materializations_from_runs_tagged_as_the_demos"),
        '"demo"',
    ),
    "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest": ByCI(),
    ".venv/bin/energy-assets demo": ByTests((f"{DEMO}test_the_demo_fills_the_newest_published_hours_quietly",), '"demo"'),
    ".venv/bin/energy-assets catch-up": ByTests(
        (f"{DEMO}test_the_command_the_demo_prints_last_fills_the_hours_published_since",), '"catch-up"'
    ),
    ".venv/bin/energy-assets latest --area DK1": ByTests(
        ("energy_assets_tests/test_cli.py::test_latest_for_one_area_is_a_rounded_table_within_120_columns",), '"DK1"'
    ),
    # The command the demo prints, with the demo's folders; the UI test runs the printed line.
    "DAGSTER_HOME=$PWD/.energy_assets/dagster_home .venv/bin/dg dev": ByTests(
        (f"{DEMO}test_the_ui_the_demo_points_to_shows_the_filled_hours",), "see it in the Dagster UI"
    ),
    ".venv/bin/dg dev": ByTests(
        ("energy_assets_tests/test_ui_end_to_end.py::test_backfills_launched_as_in_the_ui_materialize_the_whole_graph",),
        '"dev"',
    ),
    ".venv/bin/dg check defs": ByTests(
        ("energy_assets_tests/test_dagster_cli.py::test_dg_checks_and_launches_the_code_location_from_the_project_folder",),
        '"check", "defs"',
    ),
    ".venv/bin/dg launch --assets consumption_raw,energy_consumption_features,forecasting_model,energy_forecasts "
    "--partition-range 2022-12-12-00:00...2022-12-30-23:00": ByTests(
        ("energy_assets_tests/test_dagster_cli.py::test_dg_checks_and_launches_the_code_location_from_the_project_folder",),
        '"--partition-range"',
    ),
    # The fast loop: test_the_fast_loop_leaves_out_only_the_slow_tests runs its selection below.
    '.venv/bin/python -m pytest -m "not slow"': ByTests(
        ("energy_assets_tests/test_docs_commands.py::test_the_fast_loop_leaves_out_only_the_slow_tests",), '"not slow"'
    ),
    ".venv/bin/pip install -e '.[docs]' && .venv/bin/mkdocs build --strict": ByCI(),
    ".venv/bin/energy-assets latest --at 2022-12-29T23:00 --area DK1 --consumer-type 111": ByTests(
        ("energy_assets_tests/test_cli.py::test_latest_prints_the_selected_series",), '"--consumer-type"'
    ),
    ".venv/bin/energy-assets gather --from 2022-12-29T00:00 --to 2022-12-29T23:00 --output forecasts.parquet": ByTests(
        ("energy_assets_tests/test_cli.py::test_gather_writes_the_range_to_a_file",), '"--output"'
    ),
    ".venv/bin/energy-assets migrate-layout": ByTests(
        ("energy_assets_tests/test_migrate_layout.py::test_the_command_is_a_dry_run_unless_applied",), '"migrate-layout"'
    ),
    ".venv/bin/energy-assets migrate-layout --apply": ByTests(
        ("energy_assets_tests/test_migrate_layout.py::test_the_command_is_a_dry_run_unless_applied",), '"--apply"'
    ),
    ".venv/bin/energy-assets check-deployment": ByTests(
        ("energy_assets_tests/test_deployment_check.py::test_a_deployment_with_every_role_and_scope_passes_and_leaves_nothing_behind",
         "energy_assets_tests/test_deployment_check.py::test_the_local_deployment_checks_its_folder"),
        '"check-deployment"',
    ),
    # Production: the tests write the .env's variables into the processes' environment and start each process
    # with the documented command on deploy/dagster.yaml and deploy/workspace.yaml verbatim.
    "cp .env.default .env": ENV_FILE_TEST,
    "set -a && . ./.env && set +a": ENV_FILE_TEST,
    # The package installed from this checkout and loaded as a code location.
    "python3 -m venv .venv && .venv/bin/pip install -e .": ByTests(
        ("energy_assets_tests/test_packaging.py::test_the_wheel_installs_and_loads_as_a_code_location",), '"install"'
    ),
    "export DAGSTER_HOME=/srv/dagster_home && mkdir -p $DAGSTER_HOME && cp deploy/dagster.yaml $DAGSTER_HOME/": ByTests(
        PRODUCTION_TESTS.node_ids, '"dagster.yaml", dagster_home / "dagster.yaml"'
    ),
    "sudo -u postgres psql -c \"CREATE ROLE dagster LOGIN PASSWORD '<password>'\" -c \"CREATE DATABASE dagster OWNER dagster\"": ByTests(
        (f"{PRODUCTION}test_backfill_through_the_webserver_writes_the_bucket_and_postgres",), "postgres_server"
    ),
    ".venv/bin/dagster instance concurrency set model_training 1": ByTests(
        (f"{PRODUCTION}test_backfills_that_train_models_never_train_at_the_same_time",), '"concurrency", "set"'
    ),
    ".venv/bin/dagster code-server start -m energy_assets.definitions --location-name energy_assets -h 0.0.0.0 "
    "-p $ENERGY_ASSETS_CODE_SERVER_PORT": ByTests(PRODUCTION_TESTS.node_ids, '"code-server", "start"'),
    ".venv/bin/dagster-webserver -w deploy/workspace.yaml -h 0.0.0.0 -p 3000": ByTests(
        PRODUCTION_TESTS.node_ids, '"dagster-webserver"'
    ),
    ".venv/bin/dagster-daemon run -w deploy/workspace.yaml": ByTests(
        (*PRODUCTION_TESTS.node_ids, f"{PRODUCTION}test_a_backfill_survives_a_killed_daemon"), '"dagster-daemon"'
    ),
    ".venv/bin/python -m pytest -m live -rs": ByTests(
        ("energy_assets_tests/test_live_hopsworks.py::test_the_prod_path_runs_against_hopsworks_and_gcs_and_finds_the_model_in_effect",),
        "FS_API_KEY",
    ),
    "poetry build": ByCI(),
    "pip install energy_assets && dagster definitions validate -m energy_assets.definitions": ByTests(
        ("energy_assets_tests/test_packaging.py::test_the_wheel_installs_and_loads_as_a_code_location",),
        '"definitions", "validate"',
    ),
}

NOT_RUN_HERE: dict[str, str] = {
    "export FS_API_KEY=... FS_PROJECT_NAME=... GOOGLE_CLOUD_PROJECT=... GOOGLE_CLOUD_BUCKET_NAME=...":
        "credentials of a real Hopsworks project and bucket; the live suite reads them",
    "export GOOGLE_CLOUD_SERVICE_ACCOUNT_JSON_PATH=/path/key.json": "a real service-account key",
    "docker build -f deploy/Dockerfile -t <registry>/energy-assets:$(git rev-parse --short HEAD) . && docker push ...":
        "no Docker engine on the project's machines",
    "helm repo add dagster https://dagster-io.github.io/helm": "no Kubernetes on the project's machines",
    "kubectl create secret generic energy-assets-env --from-env-file=.env": "no Kubernetes on the project's machines",
    "helm upgrade --install dagster dagster/dagster -f deploy/helm/values.yaml "
    "--set \"dagster-user-deployments.deployments[0].image.tag=$(git rev-parse --short HEAD)\"":
        "no Kubernetes on the project's machines",
    "poetry config repositories.internal https://pypi.example.internal/simple/": "a private package index",
    "poetry publish -r internal": "a private package index",
    "python scripts/poetry_simple_index.py install": "only behind a proxy without PyPI's JSON API; CI installs with pip",
    "python scripts/poetry_simple_index.py lock": "run by hand when dependencies change; CI checks the lock "
                                                  "(`poetry check --lock`)",
}

SHELL_BLOCKS = ("bash", "sh", "shell", "console")
FENCE = re.compile(r"^\s*```(\S*)\s*$")
TRAILING_COMMENT = re.compile(r"\s+#\s.*$")


def documented_pages() -> list[Path]:
    return [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]


def shell_commands(markdown: str) -> list[str]:
    """The commands of the markdown's fenced shell blocks: one per line, continuations joined, comments dropped."""
    commands, language, pending = [], None, ""
    for line in markdown.splitlines():
        fence = FENCE.match(line)
        if fence:
            language = (fence.group(1) or "text") if language is None else None
            continue
        if language not in SHELL_BLOCKS:
            continue
        text = TRAILING_COMMENT.sub("", line.strip()) if not line.strip().startswith("#") else ""
        if pending:
            text, pending = f"{pending} {text}", ""
        if text.endswith("\\"):
            pending = text[:-1].strip()
            continue
        if text:
            commands.append(" ".join(text.split()))
    return commands


def documented_commands() -> dict[str, list[str]]:
    """Each command, with the pages that show it."""
    found: dict[str, list[str]] = {}
    for page in documented_pages():
        for command in shell_commands(page.read_text()):
            found.setdefault(command, []).append(str(page.relative_to(REPO_ROOT)))
    return found


def program_named(command: str) -> str:
    """The command with its program named without a folder (`/tmp/venv/bin/poetry build` -> `poetry build`)."""
    program, _, rest = " ".join(command.split()).partition(" ")
    return f"{Path(program).name} {rest}".strip()


def ci_lines() -> list[str]:
    return [program_named(line) for line in CI_SCRIPT.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_every_documented_command_is_run_by_a_test_or_by_ci():
    documented = documented_commands()
    assert len(documented) > 20  # the extraction found the blocks
    nobody_runs = {command: pages for command, pages in documented.items() if command not in RUN_BY | NOT_RUN_HERE}
    assert nobody_runs == {}, (
        "commands in the docs that no test or CI step runs (register them in RUN_BY with the test that runs them): "
        f"{nobody_runs}"
    )
    # Entries for commands the docs no longer show would hide the next new one under an old name.
    assert sorted(set(RUN_BY) | set(NOT_RUN_HERE)) == sorted(documented)


def test_the_ci_script_runs_the_commands_registered_to_it():
    lines = ci_lines()
    missing = [command for command, runner in RUN_BY.items() if isinstance(runner, ByCI)
               and not any(line.startswith(program_named(command)) for line in lines)]
    assert missing == []


def test_the_registered_tests_exist_and_run_what_they_are_registered_for():
    node_ids = sorted({node for runner in RUN_BY.values() if isinstance(runner, ByTests) for node in runner.node_ids})
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *node_ids],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    found = {line.split("[")[0] for line in collected.stdout.splitlines() if "::" in line}
    assert [node for node in node_ids if node not in found] == [], collected.stdout[-3000:] + collected.stderr[-3000:]
    unrelated = [
        (command, runner.evidence) for command, runner in RUN_BY.items() if isinstance(runner, ByTests)
        if not all(runner.evidence in (REPO_ROOT / node.split("::")[0]).read_text() for node in runner.node_ids)
    ]
    assert unrelated == []


@pytest.mark.parametrize("command", sorted(c for c in RUN_BY if ".venv/bin/energy-assets " in c))
def test_the_documented_energy_assets_commands_parse(command):
    """The flags the docs show are the CLI's: the documented arguments parse (nothing is run here)."""
    words = shlex.split(command.split(" && ")[-1])
    arguments = words[words.index(next(w for w in words if w.endswith("/energy-assets"))) + 1:]
    parsed = build_parser().parse_args(arguments)
    assert parsed.command == arguments[0]


def test_the_fast_loop_leaves_out_only_the_slow_tests():
    """`pytest -m "not slow"` selects the tests without the mark, and leaves out those with it (collected only)."""
    def collected(*options: str) -> set[str]:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *options,
             "energy_assets_tests/test_dagster_cli.py", "energy_assets_tests/test_docs_commands.py"],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False,
        )
        return {line for line in done.stdout.splitlines() if "::" in line}

    fast, every = collected("-m", "not slow"), collected()
    assert fast and fast < every
    assert all("test_dagster_cli.py" not in node for node in fast)  # that module is marked slow as a whole


def test_the_env_default_copied_to_env_loads_the_local_deployment(tmp_path):
    """`cp .env.default .env`, then `set -a && . ./.env && set +a` as the production shells do: the copy is valid
    shell and dotenv alike, both read the same variables, and the settings load as the embedded deployment."""
    from dotenv import dotenv_values

    exported = subprocess.run(
        ["bash", "-c", f"cp {shlex.quote(str(REPO_ROOT / '.env.default'))} .env && set -a && . ./.env && set +a && "
         f"{shlex.quote(sys.executable)} -c 'import json, os; print(json.dumps(dict(os.environ)))'"],
        cwd=tmp_path, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60, check=False,
    )
    assert exported.returncode == 0 and exported.stderr == "", exported.stderr
    environment = json.loads(exported.stdout)
    read_by_dotenv = dotenv_values(tmp_path / ".env")
    assert read_by_dotenv and {name: environment.get(name) for name in read_by_dotenv} == read_by_dotenv
    loaded = subprocess.run(
        [sys.executable, "-c", "from energy_assets import settings; print(settings.deployment_name())"],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120, check=False,
    )
    assert loaded.stdout.strip() == "local", loaded.stderr[-3000:]


def heading_anchors(markdown: str) -> set[str]:
    """The anchors of a page's headings, as GitHub and MkDocs' toc both make them (lowercase, punctuation
    dropped, spaces to hyphens)."""
    return {
        re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", heading.strip().lower()))
        for heading in re.findall(r"^#{1,6} (.+)$", markdown, flags=re.MULTILINE)
    }


def test_the_readme_links_to_pages_and_sections_that_exist():
    """MkDocs checks the links between the pages of docs/ (--strict); the README is outside its site."""
    readme = (REPO_ROOT / "README.md").read_text()
    links = re.findall(r"\]\(((?:docs/)?[\w./-]*)(?:#([\w-]+))?\)", readme)
    assert len(links) > 10
    broken = []
    for target, anchor in links:
        page = REPO_ROOT / target if target else REPO_ROOT / "README.md"
        if not page.is_file() or (anchor and anchor not in heading_anchors(page.read_text())):
            broken.append(f"{target}#{anchor}")
    assert broken == []
