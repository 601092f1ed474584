"""Language models: TransformerLens 4 bridges over local Hugging Face folders, text datasets and
the LM zoo. Modules without torch (`sources`, `corpus`) are safe for a cached build; `loader`
and the methods that use it import torch and transformers lazily, on a cache miss."""
