"""Data collection and datasets: ``collect`` runs a policy on many simulated robots and writes every
episode to a robomimic-layout HDF5 file (``dataset``), which ``replay`` re-runs on the same engine.
"""

from .dataset import DatasetError, DatasetInfo, DatasetWriter, Episode, inspect_dataset, open_dataset

__all__ = ["DatasetError", "DatasetInfo", "DatasetWriter", "Episode", "inspect_dataset", "open_dataset"]
