"""The pipeline's definition: the stage registry, presets, and the dvc.yaml generator."""
