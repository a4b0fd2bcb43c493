"""The installed package (a wheel, not the editable checkout) must hold every subpackage."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_subpackage_is_listed_in_pyproject():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed, found = set(setuptools["packages"]), set()
    for package, folder in setuptools["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((package, *relative)))
    assert found <= listed, f"missing from [tool.setuptools] packages: {sorted(found - listed)}"


def test_the_core_imports_none_of_the_parts():
    """`iebench/` (all but the CLI and the orchestration beside it) imports no part: the parts import it."""
    import ast

    parts = ("iebench.render", "iebench.dataset", "iebench.loaders", "iebench.baselines", "iebench.orchestration", "iebench.cli")
    for path in sorted((ROOT / "iebench").glob("*.py")):
        if path.name == "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith(parts), f"{path.name} imports {node.module}"
            elif isinstance(node, ast.Import):
                assert not [a.name for a in node.names if a.name.startswith(parts)], f"{path.name} imports a part"


def test_the_cli_loads_neither_torch_nor_blender_and_offers_the_registries_choices():
    """`iebench --help` stays fast; the choices it spells out (to stay torch-free) are the registries' own."""
    import subprocess
    import sys

    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, iebench.cli; print(sorted({'torch', 'bpy'} & set(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"

    from iebench.baselines.backbones import BACKBONES
    from iebench.baselines.config import PRESETS
    from iebench.cli import main
    from iebench.loaders.actions import ACTIONS

    train = {p.name: p for p in main.commands["train"].params}
    assert tuple(train["backbone"].type.choices) == BACKBONES
    assert set(train["preset"].type.choices) == set(PRESETS)
    assert tuple(train["action"].type.choices) == ACTIONS


def test_every_flag_passed_on_as_a_mapping_is_a_field_of_its_request():
    """render, mini and train hand their flags on as one mapping: a flag without a field would fail only when used."""
    import dataclasses

    from iebench.baselines.config import TrainConfig
    from iebench.cli import main
    from iebench.orchestration.mini import MiniOptions
    from iebench.render.request import RenderRequest

    shard_options = {"name", "val_fraction", "split_seed", "split_files", "shard_seed", "shard_size_mb"}  # -> shard_values
    for command, cls, named in (
        ("render", RenderRequest, {"dry_run", "output_format", *shard_options}),
        ("mini", MiniOptions, {"objects_root"}),
        ("train", TrainConfig, {"config_file", "resume", "preset"}),
    ):
        flags = {p.name for p in main.commands[command].params} - named
        fields = {f.name for f in dataclasses.fields(cls)}
        assert flags <= fields, f"{command}: {sorted(flags - fields)} are not fields of {cls.__name__}"
