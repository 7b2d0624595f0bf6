"""Cross-modal self-supervised pretraining (issue 5): tokenizer, pseudo-labels, student, downstream.

Stage 1 ``tokenizer_train`` fits a ``VQTokenizer`` on paired ECG + PPG windows and reports
codebook health each epoch; stage 2 ``codes_predict`` turns paired windows into code indices
and ``student_pretrain`` trains a one-modality student to predict them; stage 3
``regression_fit`` / ``classification_fit`` train the student (scratch, linear probe or fine-tune)
on a labelled task (``tasks.DOWNSTREAM``: BIDMC PPG heart rate, synthetic PPG AF vs sinus).
``beats_align`` cuts the tokenizer's patches at the ECG's R peaks (``r_peaks_find``).
Baselines: ``contrastive_pretrain`` (NT-Xent) and ``masked_pretrain`` (masked-patch
reconstruction) on the same encoder; ``ppg_motion_add`` (PPG motion) and ``ecg_noise_add``
(NSTDB noise on the ECG) make the robustness test windows.
``python -m wearable.ssl.run`` runs all three and writes the label-efficiency tables.
"""

from .beats import beats_align, r_peaks_find
from .contrastive import contrastive_pretrain
from .downstream import classification_f1, classification_fit, regression_fit, regression_mae
from .masked import masked_pretrain
from .pretrain import codes_predict, student_pretrain, tokenizer_train
from .robustness import ecg_noise_add, ppg_motion_add

__all__ = ["tokenizer_train", "codes_predict", "student_pretrain", "contrastive_pretrain", "masked_pretrain",
           "regression_fit", "regression_mae", "classification_fit", "classification_f1", "beats_align",
           "r_peaks_find", "ppg_motion_add", "ecg_noise_add"]
