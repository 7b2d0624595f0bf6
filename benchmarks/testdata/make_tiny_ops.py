"""Regenerate ``tiny_ops.tflite``: a float graph with one op of each kind the MAC counter knows.

Run in the full environment (litert-torch): ``python benchmarks/testdata/make_tiny_ops.py``.
``tests/test_bench_macs.py`` checks the counts against hand-computed ones from the layers below.
"""

from pathlib import Path

import litert_torch
import torch
from torch import nn


class TinyOps(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)             # (1,8,8,8): 8*8*8 * 3*3*3 = 13,824 MACs
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)      # (1,8,8,8): 8*8*8 * 3*3   =  4,608 MACs
        self.pool = nn.AvgPool2d(2)                            # (1,8,4,4): 128 * 2*2     =    512
        self.fc = nn.Linear(8, 4)                              # (1,4): 4 * 8             =     32

    def forward(self, x):
        y = self.pool(self.dw(self.conv(x)))
        y = y * y + y                                          # MUL 128, ADD 128
        m = y.mean(dim=(2, 3))                                 # MEAN over 128 inputs
        a = self.fc(m).reshape(1, 2, 2)
        return torch.matmul(a, a)                              # BATCH_MATMUL (1,2,2), K=2: 8


if __name__ == "__main__":
    torch.manual_seed(0)
    model = TinyOps().eval()
    edge = litert_torch.convert(model, (torch.randn(1, 3, 8, 8),))
    out = Path(__file__).with_name("tiny_ops.tflite")
    edge.export(str(out))
    print(f"wrote {out} ({out.stat().st_size} bytes)")
