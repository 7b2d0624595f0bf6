"""Experiment commands that train, export and compare several models on the same data.

``python -m wearable.experiments.ecg_models``: tiny InceptionFormer vs 1-D ResNet-18 and
MobileNetV2 on MIT-BIH rhythm (inter-patient), plus the attention ablation (issue 4).
"""

__all__: list[str] = []
