"""One module per CLI command (mkdocs' layout); `console` holds what they share."""
