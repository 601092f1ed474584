"""Site-level pages that no directive owns: unit pages, series navigation, the index."""
