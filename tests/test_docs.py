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


def _readme_command_lines(prefix: str) -> list[str]:
    """Complete command lines of the README's code blocks (no [optional] placeholders)."""
    text = (Path(__file__).parent.parent / "README.md").read_text()
    lines, inside = [], False
    for line in text.splitlines():
        if line.strip().startswith("```"):
            inside = not inside
            continue
        code = line.split("#")[0].strip()
        if inside and code.startswith(prefix) and "[" not in code and "|" not in code:
            lines.append(code)
    return lines


def test_readme_breakeven_examples_work_as_printed(capsys):
    """Each break-even example must find a break-even as printed, not stop at a range cut short
    by another parameter (remote_cpus <= cpus - 1 needs a cpus large enough)."""
    import shlex

    examples = _readme_command_lines("costmodel breakeven")
    assert examples, "the README shows no complete `costmodel breakeven` line"
    for line in examples:
        code = main(shlex.split(line)[1:])
        out, err = capsys.readouterr()
        assert code == 0, (line, err)
        assert "no break-even" not in out, (line, out)
        assert "the order changes at" in out or "equal cost at" in out, (line, out)


def test_the_repository_stands_alone():
    """No code, comment, docstring or document of the repository points at files outside it (the
    team's shared notes, issue numbers of the tracker)."""
    import re

    root = Path(__file__).parent.parent
    outside = re.compile(r"DOMAIN\.md|REFERENCES\.md|ARCHITECTURE\.md|STYLE\.md|\.\./shared|shared/|\bissue \d+\b")
    files = [p for pattern in ("costmodel/**/*.py", "costmodel/**/*.c", "costmodel/**/*.h", "costmodel/**/*.md",
                               "tests/*.py", "benchmarks/*.py", "notebooks/*.ipynb", "data/*/README.md", "*.md",
                               "Makefile", "setup.py", "pyproject.toml")
             for p in root.glob(pattern) if p.is_file() and ".venv" not in p.parts]
    me = Path(__file__).resolve()
    hits = []
    for p in files:
        if p.resolve() == me:
            continue
        for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1):
            if outside.search(line):
                hits.append(f"{p.relative_to(root)}:{n}: {line.strip()[:100]}")
    assert not hits, "\n".join(hits)
