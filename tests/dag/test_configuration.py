"""The README's configuration table lists exactly the Variables the code reads: those the DAGs'
templates read (every template field of every task, rendered with a ``var`` that records each read)
and those the plugins read in Python (``Variable.get``)."""

from __future__ import annotations

import ast
import re

import jinja2
import pytest
from airflow.dag_processing.dagbag import DagBag

from tests.support.paths import REPO


class RecordingVariables:
    """``var.value`` of a template context that records each Variable read and answers its default."""

    def __init__(self) -> None:
        self.read: set[str] = set()

    def get(self, name: str, default: str = "") -> str:
        self.read.add(name)
        return default

    def __getattr__(self, name: str) -> str:
        if name.startswith("__"):
            raise AttributeError(name)
        self.read.add(name)
        return ""


class Anything:
    """Whatever else a template reads (``conn.get(task.conn_id).conn_type``…): answers itself, prints empty."""

    def __getattr__(self, name: str) -> Anything:
        return self

    def __call__(self, *args: object, **kwargs: object) -> Anything:
        return self

    def __str__(self) -> str:
        return ""


def template_texts(value: object) -> list[str]:
    """Every string inside a template field's value (dicts and lists of them included)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in template_texts(item)]
    if isinstance(value, (list, tuple)):
        return [text for item in value for text in template_texts(item)]
    return []


def read_by_templates() -> set[str]:
    variables = RecordingVariables()
    environment = jinja2.Environment(undefined=jinja2.ChainableUndefined,
                                     loader=jinja2.FileSystemLoader(REPO / "include" / "sql"))
    context = {"var": {"value": variables, "json": variables}, "params": {"full_restage_songs": False},
               "conn": Anything(), "task": Anything()}
    for dag in DagBag(dag_folder=str(REPO / "dags")).dags.values():
        for task in dag.tasks:
            for field in task.template_fields:
                for text in template_texts(getattr(task, field, None)):
                    if "{{" in text or "{%" in text:
                        environment.from_string(text).render(context)
    return variables.read


def read_in_python() -> set[str]:
    """The first argument of every ``Variable.get`` in the plugins: a literal, or a module constant."""
    names = set()
    for path in (REPO / "plugins").rglob("*.py"):
        tree = ast.parse(path.read_text())
        constants = {target.id: node.value.value for node in tree.body
                     if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                     for target in node.targets if isinstance(target, ast.Name)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "Variable"):
                argument = node.args[0]
                assert isinstance(argument, (ast.Constant, ast.Name)), f"{path}: Variable.get of an expression"
                names.add(argument.value if isinstance(argument, ast.Constant) else constants[argument.id])
    return names


def readme_variables() -> set[str]:
    text = (REPO / "README.md").read_text()
    table = text.split("## Configuration", 1)[1].split("\n\n", 2)[1]
    return {name for row in table.splitlines() if re.search(r"\| Variables? ", row)
            for name in re.findall(r"`(sparkify_\w+)`", row.split("|")[2])}


@pytest.fixture(scope="module")
def code_variables() -> set[str]:
    return read_by_templates() | read_in_python()


def test_the_readme_lists_exactly_the_variables_the_code_reads(code_variables):
    assert {"sparkify_source", "sparkify_max_errors", "sparkify_alerts"} <= code_variables  # the reading works
    assert readme_variables() == code_variables
