"""Datasets for the experiments: OpenML by dataset id (embedded, user or live cache) or a user's file, then the
paper's column drops, seeded train/test(/validation) split and encoding into float32 model matrices whose
input columns map back to the original features. ``load_dataset`` then ``prepare_split`` is the whole API.
"""

from data.columns import MISSING_CATEGORY, column_drops
from data.encoding import FeatureEncoder
from data.loading import EMBEDDED_CACHE_DIR, DataError, RawDataset, file_dataset_key, load_dataset
from data.preprocessing import PreparedSplit, prepare_split
from data.task import TaskInfo, check_task

__all__ = [
    "EMBEDDED_CACHE_DIR",
    "MISSING_CATEGORY",
    "DataError",
    "FeatureEncoder",
    "PreparedSplit",
    "RawDataset",
    "TaskInfo",
    "check_task",
    "column_drops",
    "file_dataset_key",
    "load_dataset",
    "prepare_split",
]
