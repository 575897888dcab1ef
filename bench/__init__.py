"""Benchmark of KerasTuner's searchers against an Optuna-backed KerasTuner tuner."""
