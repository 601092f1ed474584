"""Baseline models of the example site (circuitpress.toml's `[models.untrained-b]`).

A universality score means little without a floor: how well would a network that learned
nothing match? `untrained_shapes_b` is the architecture of the zoo's shapes-b with the seeded
random weights it started training from, never trained.
"""

from circuitpress.analysis.models.zoo.models import ShapesNet, build_model


def untrained_shapes_b() -> ShapesNet:
    """shapes-b before its first training step (the same seeded initialisation)."""
    return build_model("shapes-b")
