"""What the masks know: mask dumps as data, linear probes, dedicated baselines, probe costs."""
