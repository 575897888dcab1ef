"""One search and its processes: runner, trial processes, workers, tracking, TensorBoard."""
