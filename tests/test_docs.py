"""The README's parameter table is the registry's, not a copy that drifts."""

from pathlib import Path

from costmodel.cli import main


def test_readme_parameter_table_is_generated_from_the_registry(capsys):
    assert main(["params", "--markdown"]) == 0
    table = capsys.readouterr().out.strip()
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert table in readme, "README's parameter table is stale: paste `costmodel params --markdown`"


def test_readme_shows_the_two_commands_first():
    lines = [l.strip() for l in (Path(__file__).parent.parent / "README.md").read_text().splitlines()]
    first_commands = [l for l in lines if l.startswith("make ")][:2]
    assert first_commands == ["make demo", "make test"]
