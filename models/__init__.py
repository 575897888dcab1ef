"""Model builders shared by every searcher."""
from models.cnn import baseline_model, make_build_model
from models.space import SEARCH_SPACE, declare, space_config, space_hyperparameters

__all__ = ["SEARCH_SPACE", "baseline_model", "declare", "make_build_model",
           "space_config", "space_hyperparameters"]
