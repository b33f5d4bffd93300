"""snake-world-eqm: a Snake world model trained by Equilibrium Matching."""

__version__ = "0.1.0"
