"""Sample quality: the domain feature extractor, k-NN geometry, set fidelity, per-sample filter."""
