"""Cross-modal self-supervised pretraining (issue 5): tokenizer, pseudo-labels, student, downstream.

Stage 1 ``tokenizer_train`` fits a ``VQTokenizer`` on paired ECG + PPG windows and reports
codebook health each epoch; stage 2 ``codes_predict`` turns paired windows into code indices
and ``student_pretrain`` trains a one-modality student to predict them; stage 3
``regression_fit`` trains the student (scratch, linear probe or fine-tune) on a labelled task.
``python -m wearable.ssl.run`` runs all three and prints the label-efficiency table.
"""

from .downstream import regression_fit, regression_mae
from .pretrain import codes_predict, student_pretrain, tokenizer_train

__all__ = ["tokenizer_train", "codes_predict", "student_pretrain", "regression_fit", "regression_mae"]
