"""iebench: render, pack, load, train and evaluate invariant-equivariant SSL on 3DIEBench."""

__version__ = "0.1.0"
