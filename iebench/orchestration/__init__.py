"""Orchestration: runs that chain the parts (objects -> render -> shards -> train -> evaluate -> report).

It sits beside the CLI, above the parts, and imports each part inside the stage that needs it; the
core (`iebench/`, all but `cli.py` and this folder) never imports it.
"""
