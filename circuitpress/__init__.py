"""circuitpress: publish circuits-style interpretability articles as a static site."""

__version__ = "0.1.0"
