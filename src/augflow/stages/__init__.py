"""The pipeline's stages, one module each, in DAG order (augflow.paths.STAGES). Each has one entry,
`run_<stage>(config blocks, seed, paths) -> metrics`, called by `augflow.cli`; stages never import
each other, only the library below them (data, models, quality, evaluation, io, plots, runners)."""
