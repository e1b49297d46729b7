"""From corpora to labelled mixtures: downloads, real and synthetic speech, noises, splits, mixing, frame labels."""
