"""Continual learning for the ECG-CL backbone: per-task masks (PackNet), pruning, export.

>>> from wearable.continual import ContinualNet, LearnConfig, task_learn   # doctest: +SKIP
>>> net = ContinualNet(ECGCLConfig()); net.task_add("beat", "classification", labels)
>>> task_learn(net, "beat", train_windows, config=LearnConfig(prune_ratio=0.5))
"""

from .export import TASK_MODELS, task_export
from .net import ContinualNet, TaskInfo
from .packnet import LearnConfig, PruneStats, epochs_run, magnitude_prune, task_evaluate, task_learn

__all__ = ["ContinualNet", "TaskInfo", "LearnConfig", "PruneStats", "magnitude_prune", "task_learn",
           "task_evaluate", "epochs_run", "task_export", "TASK_MODELS"]
