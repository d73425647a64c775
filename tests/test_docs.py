"""The README's parameter table is the registry's, not a copy that drifts."""

from pathlib import Path

from costmodel.cli import main


README = Path(__file__).parent.parent / "README.md"


def test_readme_parameter_table_is_generated_from_the_registry(capsys):
    from costmodel.generate import readme_table_difference, stale_message

    assert main(["params", "--markdown"]) == 0
    table = capsys.readouterr().out.strip()
    readme = README.read_text()
    assert table in readme, stale_message("README.md's parameter table", readme_table_difference(readme, table))


def test_a_stale_readme_table_names_the_parameter_and_the_command(monkeypatch):
    from costmodel import registry
    from costmodel.generate import COMMAND, parameter_table_markdown, readme_table_difference, readme_with_table

    readme = README.read_text()
    new = registry.Numeric("test_only_step_ns", "ns", 0.0, 0.0, 1e6, "A test-only cost step.", registry.MACHINE)
    monkeypatch.setitem(registry.PARAMS, new.name, new)
    table = parameter_table_markdown()
    assert table not in readme
    assert readme_table_difference(readme, table) == "lacks test_only_step_ns"
    rewritten = readme_with_table(readme, table)  # what the command writes: the table, nothing else
    assert table in rewritten and readme_table_difference(rewritten, table) == ""
    assert rewritten.replace(table + "\n", "") == readme.replace(readme_table_block(readme), "")
    assert COMMAND == "costmodel regenerate"


def readme_table_block(readme: str) -> str:
    lines = readme.splitlines(keepends=True)
    first = next(i for i, l in enumerate(lines) if l.startswith("| name | kind | unit |"))
    end = next(i for i in range(first, len(lines) + 1) if i == len(lines) or not lines[i].startswith("|"))
    return "".join(lines[first:end])


def _markdown_table(readme: str, header_start: str) -> list[list[str]]:
    """The rows of the README's table whose header starts with ``header_start``, as cells."""
    lines = readme.splitlines()
    first = next(i for i, l in enumerate(lines) if l.startswith(header_start))
    rows = []
    for line in lines[first + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def test_readme_policy_table_lists_the_declared_policies():
    """One row per declared policy, in declaration order, with the kernels the declaration names
    (the README's typography: <= as ≤, a range's - as –; a 2026 proposal as 'proposed, not
    merged'); the middle column is the README's own short wording."""
    from costmodel.model.policies import POLICIES, PROPOSED

    rows = _markdown_table(README.read_text(), "| policy |")
    named = [r[0].strip("`") for r in rows]
    missing = [p for p in POLICIES if p not in named]
    extra = [n for n in named if n not in POLICIES]
    assert not missing and not extra, (f"README's policy table: add a row for {', '.join(missing)}" if missing
                                       else f"README's policy table: {', '.join(extra)} is not a declared policy")
    assert named == list(POLICIES), "README's policy table: rows out of the declaration order of policies.py"

    def readme_kernels(kernels: str) -> str:
        if kernels == PROPOSED:
            return "proposed, not merged"
        return kernels.replace("<= ", "≤ ").replace(">= ", "≥ ").replace(" - ", " – ")

    for (name, words, kernels), policy in zip(rows, POLICIES.values()):
        assert kernels == readme_kernels(policy.kernels), \
            f"README's policy table: {name.strip('`')}'s kernels say {kernels!r}, policies.py says {policy.kernels!r}"
        assert len(words) > 10, f"README's policy table: {name} needs its one-line description"


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
