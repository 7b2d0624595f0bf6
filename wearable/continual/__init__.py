"""Continual learning for the ECG-CL backbone: per-task masks (PackNet), pruning, scenarios, deployment.

>>> net = ContinualNet(ECGCLConfig())                                          # doctest: +SKIP
>>> net.task_add("qrs", "segmentation", ("background", "qrs"))               # doctest: +SKIP
>>> task_learn(net, "qrs", train_windows, config=LearnConfig(prune_ratio=0.5))  # doctest: +SKIP
>>> model = task_export(net, "qrs")  # a plain ecgcl_seg_tiny for quantize.export_model

Commands: ``python -m wearable.continual.run`` (scenarios) and
``python -m wearable.continual.prune_report`` (structured pruning for deployment).
"""

from .export import TASK_MODELS, task_export
from .net import ContinualNet, TaskInfo
from .packnet import LearnConfig, PruneStats, epochs_run, magnitude_prune, task_evaluate, task_learn
from .qrs import detections_score, qrs_evaluate, qrs_peaks
from .scenarios import SCENARIOS, ScenarioResult, TaskDef, scenario_run, task_windows
from .structured import channels_prune

__all__ = ["ContinualNet", "TaskInfo", "LearnConfig", "PruneStats", "magnitude_prune", "task_learn",
           "task_evaluate", "epochs_run", "task_export", "TASK_MODELS", "SCENARIOS", "ScenarioResult", "TaskDef",
           "scenario_run", "task_windows", "channels_prune", "qrs_peaks", "detections_score", "qrs_evaluate"]
