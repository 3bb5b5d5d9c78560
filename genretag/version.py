"""The package's version (CHANGELOG.md), on its own so that what records it (training runs, learned bundles)
need not import the public API; the shipped default model has its own, in its card.json."""

__version__ = "0.7.0"
