"""The README and docs/ name only commands and flags that exist, and link every page of the manual."""

import re
from pathlib import Path

import click
import pytest

from iebench.cli import main

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").glob("*.md"))
MENTION = re.compile(r"\biebench(?:\.cli)? ((?:--?[a-z][a-z0-9-]* )*)([a-z][a-z-]*)((?: [a-z][a-z-]*)?)([^`|#\n]*)")
GLOBAL_FLAGS = {"--debug", "--version", "--help", "-h"}


def code(path: Path):
    """(line number, text) of the code on a page: whole lines inside fences, `spans` elsewhere."""
    fenced = False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("```"):
            fenced = not fenced
        elif fenced:
            yield number, line
        else:
            yield from ((number, span) for span in re.findall(r"`([^`]+)`", line))


def mentions(path: Path):
    """(line number, command words, flags) for every `iebench <command> ... --flag` in the code of a page."""
    for number, line in code(path):
        for match in MENTION.finditer(line):
            leading, command, sub, rest = match.groups()
            yield number, command, sub.strip(), set(re.findall(r"(?<![\w-])--?[a-z][a-z0-9-]*", leading + rest))


def options(command: click.Command) -> set[str]:
    names = {"--help", "-h"}
    for param in command.params:
        names |= set(getattr(param, "opts", [])) | set(getattr(param, "secondary_opts", []))
    return names


@pytest.mark.parametrize("page", [ROOT / "README.md", *PAGES], ids=lambda p: p.name)
def test_every_command_and_flag_named_exists(page):
    checked = 0
    for number, name, sub, flags in mentions(page):
        if name not in main.commands:
            raise AssertionError(f"{page.name}:{number}: no command 'iebench {name}'")
        command = main.commands[name]
        if isinstance(command, click.Group):
            assert sub in command.commands, f"{page.name}:{number}: no command 'iebench {name} {sub}'"
            command = command.commands[sub]
        unknown = flags - options(command) - GLOBAL_FLAGS
        assert not unknown, f"{page.name}:{number}: 'iebench {name}' has no option {', '.join(sorted(unknown))}"
        checked += 1
    assert checked or page.name in ("benchmarks.md",), f"{page.name} names no command"


def test_the_readme_links_every_page_of_the_manual():
    readme = (ROOT / "README.md").read_text()
    assert PAGES, "docs/ has no pages"
    for page in PAGES:
        assert f"docs/{page.name}" in readme, f"README.md does not link docs/{page.name}"
    for target in re.findall(r"\]\(((?:docs/)?[\w./-]+)\)", readme + "".join(p.read_text() for p in PAGES)):
        if not target.startswith("http"):
            assert (ROOT / target).exists() or (ROOT / "docs" / target).exists(), f"a link points to {target}, which does not exist"


def _helps(command: click.Command, ctx: click.Context) -> list[str]:
    """The --help text of a command and of every command under it."""
    texts = [command.get_help(ctx)]
    for name in getattr(command, "commands", {}):
        sub = command.commands[name]
        texts += _helps(sub, click.Context(sub, info_name=name, parent=ctx))
    return texts


def test_no_page_or_help_text_cites_the_specification():
    """A reader of the repository has no SPEC file: the README, docs/ and --help state their facts themselves."""
    citing = [p.name for p in [ROOT / "README.md", *PAGES] if re.search(r"\bSPEC\b", p.read_text())]
    assert citing == []
    helps = _helps(main, click.Context(main, info_name="iebench"))
    assert len(helps) > 10 and not [h.splitlines()[0] for h in helps if re.search(r"\bSPEC\b", h)]
