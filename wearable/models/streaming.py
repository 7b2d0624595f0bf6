"""Stateful streaming of 1-D convolutional models (the kws_streaming idea, external-state mode).

``stream_convert(model)`` traces a registered fully convolutional 1-D model with ``torch.fx``
and returns a ``StreamingModel``: a step model that takes a block of ``block_samples`` new
input samples plus one state tensor per stateful layer, and returns the outputs for that
block plus the updated states::

    step = stream_convert(model)
    states = step.initial_states()          # zeros, shapes in step.states
    for block in blocks:                    # (1, C, step.block_samples) each
        y, *states = step(block, *states)   # y: (1, K, block_samples) for a per-sample output

Every input sample goes through each layer once, instead of once per overlapping window.
The states are explicit inputs and outputs (kws_streaming's "external state" mode) so that
the step model survives TFLite conversion and runs in TFLite Micro, where the caller owns
the buffers.

How layers become streaming layers (``R``: input samples per frame of a tensor; a tensor's
*delay* ``D`` is in its own frames: stream frame ``m`` equals offline frame ``m - D``):

* ``Conv1d`` (any dilation, stride, groups, so depthwise too; zero padding ``p``): its state
  holds the last ``S`` input frames. The block's frames are appended, a valid convolution
  runs over the first ``S + n - delta`` frames and the last ``S`` become the next state, with
  ``S = (k - 1) * dilation + 1 - stride + delta``. ``delta >= 0`` is the smallest extra delay
  that makes the output delay ``(S + D - p) / stride`` an integer. A non-causal 'same'
  padding thus becomes a fixed delay: the model looks ``p`` frames ahead, so the stream
  answers that much later.
* ``ConvTranspose1d`` with kernel == stride (no padding): stateless up-sampling, delay x stride.
* elementwise modules and functions (BatchNorm in eval mode, ReLU, ...): pass through.
* ``+``, ``-``, ``*`` and ``torch.cat`` along channels: inputs with different delays are aligned by
  delay lines (a state of ``D_max - D`` frames on each early input).

The reference for equality is the offline model applied to the whole signal at once (it is
fully convolutional): stream output sample ``t + delay_samples`` equals offline output
sample ``t`` for ``warmup_samples <= t < T - delay_samples``. The first ``warmup_samples``
differ because the offline model zero-pads every intermediate tensor at the left edge,
while the stream's zero states hold the response to zeros; a sliding-window model equals
the offline one inside each window, away from the window's edges by the same margins.
Layers outside this list (pooling over time, Linear over time, upsampling by
interpolation) raise ``NotStreamableError`` naming the node.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

__all__ = ["NotStreamableError", "StateSpec", "StreamingModel", "stream_convert", "stream_run"]

_ELEMENTWISE_MODULES = (nn.BatchNorm1d, nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh,
                        nn.LeakyReLU, nn.Identity, nn.Dropout, nn.SiLU, nn.ELU)
_ELEMENTWISE_FUNCTIONS = {torch.relu, torch.sigmoid, torch.tanh, nn.functional.relu, nn.functional.relu6,
                          nn.functional.hardswish, nn.functional.silu, nn.functional.sigmoid,
                          nn.functional.dropout, nn.functional.leaky_relu}
_ELEMENTWISE_METHODS = {"relu", "sigmoid", "tanh", "contiguous"}
_BINARY = {operator.add, operator.sub, operator.mul, torch.add, torch.sub, torch.mul}


class NotStreamableError(ValueError):
    """The model has a layer that has no streaming form here."""


@dataclass(frozen=True)
class StateSpec:
    """One state tensor: the last ``frames`` frames of a traced tensor (at ``rate`` input samples per
    frame), shape ``(1, channels, frames)``; shared by every convolution and delay line reading it."""

    name: str  # the traced node whose history it holds
    channels: int
    frames: int
    rate: int

    @property
    def shape(self) -> tuple[int, int, int]:
        return (1, self.channels, self.frames)


@dataclass
class _Meta:
    rate: int  # input samples per frame
    delay: int  # frames
    left: int  # input samples to the left that reach this tensor (bound on the edge effect)
    channels: int


class StreamingModel(nn.Module):
    """Step model: ``forward(x, *states) -> (*outputs, *new_states)``; see the module docstring.

    ``x`` is ``(1, in_channels, block_samples)``. ``output_rates``/``output_delays`` give, per
    output, the input samples per output frame and the delay in input samples.
    """

    def __init__(self, gm: fx.GraphModule, plan: list[tuple], states: list[StateSpec], outputs: list[str],
                 block_samples: int, output_rates: list[int], output_delays: list[int], warmup_samples: int,
                 in_channels: int = 1) -> None:
        super().__init__()
        self.gm = gm  # owns the (padding-free) layers the plan calls
        self._plan = plan
        self.states = tuple(states)
        self._outputs = outputs
        self.block_samples = block_samples
        self.output_rates = tuple(output_rates)
        self.output_delays = tuple(output_delays)
        self.warmup_samples = warmup_samples
        self.in_channels = in_channels

    @property
    def delay_samples(self) -> int:
        """The largest output delay, in input samples."""
        return max(self.output_delays)

    def initial_states(self, dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
        return [torch.zeros(s.shape, dtype=dtype) for s in self.states]

    def forward(self, x: torch.Tensor, *states: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if len(states) != len(self.states):
            raise ValueError(f"expected {len(self.states)} state tensors, got {len(states)}")
        env: dict[str, torch.Tensor] = {}
        bufs: dict[int, torch.Tensor] = {}  # state k followed by the block's frames of its tensor
        new: list[torch.Tensor] = list(states)

        def history(src: str, k: int) -> torch.Tensor:
            if k not in bufs:
                bufs[k] = torch.cat([states[k], env[src]], dim=-1)
                new[k] = bufs[k][..., bufs[k].shape[-1] - self.states[k].frames:]
            return bufs[k]

        for step in self._plan:
            kind, name = step[0], step[1]
            if kind == "input":
                env[name] = x
            elif kind == "conv":  # valid convolution over the last `need` history frames + the block, less `trim`
                _, _, src, module, k, need, trim = step
                xin = env[src] if k is None else history(src, k)
                start = 0 if k is None else self.states[k].frames - need
                env[name] = self.gm.get_submodule(module)(xin[..., start:xin.shape[-1] - trim])
            elif kind == "module":
                env[name] = self.gm.get_submodule(step[3])(env[step[2]])
            elif kind == "delay":  # the block's frames, `lag` frames late
                _, _, src, k, lag = step
                buf = history(src, k)
                n = env[src].shape[-1]
                start = self.states[k].frames - lag
                env[name] = buf[..., start:start + n]
            elif kind == "call":
                _, _, fn, args, kwargs = step
                env[name] = fn(*_resolve(args, env), **_resolve(kwargs, env))
            elif kind == "method":
                _, _, method, args, kwargs = step
                obj, *rest = _resolve(args, env)
                env[name] = getattr(obj, method)(*rest, **_resolve(kwargs, env))
        return (*(env[o] for o in self._outputs), *new)


def _resolve(a, env):
    if isinstance(a, _Ref):
        return env[a.name]
    if isinstance(a, (list, tuple)):
        return type(a)(_resolve(v, env) for v in a)
    if isinstance(a, dict):
        return {k: _resolve(v, env) for k, v in a.items()}
    return a


@dataclass(frozen=True)
class _Ref:
    name: str


def stream_convert(model: nn.Module, *, block_samples: int | None = None) -> StreamingModel:
    """The external-state step model of ``model`` (eval mode; the model is not modified).

    ``block_samples`` (default: the model's total stride) must be a multiple of the total
    stride. Raises ``NotStreamableError`` for a layer without a streaming form.
    """
    gm = fx.symbolic_trace(_copy_eval(model))
    in_channels = int(getattr(getattr(model, "config", None), "in_channels", 1))
    width = int(getattr(getattr(model, "config", None), "window_samples", 256))
    ShapeProp(gm).propagate(torch.zeros(1, in_channels, width))
    meta: dict[str, _Meta] = {}
    plan: list[tuple] = []
    history: dict[str, list[int]] = {}
    rates: list[int] = [1]
    outputs: list[str] = []

    def channels(node) -> int:
        return int(node.meta["tensor_meta"].shape[1])

    def state(src: str, ch: int, frames: int, rate: int) -> int | None:
        """Index of the history kept of tensor ``src`` (one per tensor, as long as its longest use)."""
        if frames <= 0:
            return None
        if src not in history:
            history[src] = [ch, frames, rate, len(history)]
        history[src][1] = max(history[src][1], frames)
        return history[src][3]

    for node in gm.graph.nodes:
        if node.op == "placeholder":
            if meta:
                raise NotStreamableError(f"only one input is supported, got another: {node.name}")
            meta[node.name] = _Meta(1, 0, 0, in_channels)
            plan.append(("input", node.name))
        elif node.op == "call_module":
            mod = gm.get_submodule(node.target)
            src = _single_tensor_arg(node)
            m_in = meta[src]
            if isinstance(mod, nn.Conv1d):
                meta[node.name], step = _conv_plan(gm, node, mod, m_in, state, channels(node))
                rates.append(m_in.rate * mod.stride[0])
                plan.append(step)
            elif isinstance(mod, nn.ConvTranspose1d):
                k, s = mod.kernel_size[0], mod.stride[0]
                if k != s or mod.padding[0] or mod.output_padding[0] or mod.dilation[0] != 1 or m_in.rate % s:
                    raise NotStreamableError(f"{node.name}: ConvTranspose1d streams only with kernel == stride, no "
                                             f"padding, at a rate divisible by the stride (got kernel {k}, stride {s})")
                meta[node.name] = _Meta(m_in.rate // s, m_in.delay * s, m_in.left + m_in.rate, channels(node))
                plan.append(("module", node.name, src, node.target))
            elif isinstance(mod, _ELEMENTWISE_MODULES):
                meta[node.name] = _Meta(m_in.rate, m_in.delay, m_in.left, channels(node))
                plan.append(("module", node.name, src, node.target))
            else:
                raise NotStreamableError(f"{node.name}: {type(mod).__name__} has no streaming form")
        elif node.op in ("call_function", "call_method"):
            target = node.target
            if target in _BINARY or target is torch.cat:
                _check_cat(node)
                args = _align(node, meta, plan, state, channels)
                srcs = [meta[a.name] for a in node.all_input_nodes]
                meta[node.name] = _Meta(srcs[0].rate, max(m.delay for m in srcs), max(m.left for m in srcs),
                                        channels(node))
                plan.append(("call", node.name, target, args, _refs(node.kwargs)))
            elif target in _ELEMENTWISE_FUNCTIONS or (node.op == "call_method" and target in _ELEMENTWISE_METHODS):
                m_in = meta[_single_tensor_arg(node)]
                meta[node.name] = _Meta(m_in.rate, m_in.delay, m_in.left, channels(node))
                kind = "call" if node.op == "call_function" else "method"
                plan.append((kind, node.name, target, _refs(node.args), _refs(node.kwargs)))
            else:
                raise NotStreamableError(f"{node.name}: {getattr(target, '__name__', target)} has no streaming form")
        elif node.op == "output":
            outs = node.args[0] if isinstance(node.args[0], (tuple, list)) else (node.args[0],)
            outputs = [o.name for o in outs]
        else:
            raise NotStreamableError(f"{node.name}: {node.op} nodes have no streaming form")
    block = math.lcm(*rates)
    if block_samples is not None:
        if block_samples <= 0 or block_samples % block:
            raise ValueError(f"block_samples must be a positive multiple of the total stride {block}, "
                             f"got {block_samples}")
        block = block_samples
    states = [StateSpec(src, ch, frames, rate) for src, (ch, frames, rate, _) in history.items()]
    out_meta = [meta[o] for o in outputs]
    return StreamingModel(gm, plan, states, outputs, block, [m.rate for m in out_meta],
                          [m.delay * m.rate for m in out_meta], max(m.left for m in out_meta), in_channels)


def _copy_eval(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model).eval()


def _single_tensor_arg(node: fx.Node) -> str:
    srcs = node.all_input_nodes
    if len(srcs) != 1:
        raise NotStreamableError(f"{node.name}: expected one tensor input, got {len(srcs)}")
    return srcs[0].name


def _conv_plan(gm, node, mod: nn.Conv1d, m_in: _Meta, state, out_channels: int) -> tuple[_Meta, tuple]:
    if mod.padding_mode != "zeros" or isinstance(mod.padding, str):
        raise NotStreamableError(f"{node.name}: Conv1d needs numeric zero padding (got {mod.padding!r}, "
                                 f"{mod.padding_mode})")
    k, s, d, p = mod.kernel_size[0], mod.stride[0], mod.dilation[0], mod.padding[0]
    extent = (k - 1) * d + 1
    base = extent - s
    delta = max(0, -base)
    while (base + delta + m_in.delay - p) % s or base + delta + m_in.delay - p < 0:
        delta += 1
    frames = base + delta
    mod.padding = (0,)  # the state supplies the left context, the delay the right one
    src = _single_tensor_arg(node)
    index = state(src, mod.in_channels, frames, m_in.rate)
    left = m_in.left + (p + 1) * m_in.rate
    new = _Meta(m_in.rate * s, (frames + m_in.delay - p) // s, left, out_channels)
    return new, ("conv", node.name, src, node.target, index, frames, delta)


def _check_cat(node: fx.Node) -> None:
    if node.target is torch.cat:
        dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
        if dim not in (1, -2):
            raise NotStreamableError(f"{node.name}: torch.cat streams along channels only (dim=1), got dim={dim}")


def _align(node: fx.Node, meta, plan, state, channels) -> tuple:
    """Args of an add/cat with delay lines inserted on inputs that are ahead of the others."""
    srcs = node.all_input_nodes
    if len({meta[a.name].rate for a in srcs}) > 1:
        raise NotStreamableError(f"{node.name}: inputs at different rates")
    target = max(meta[a.name].delay for a in srcs)
    renamed = {}
    for a in srcs:
        lag = target - meta[a.name].delay
        if lag and a.name not in renamed:
            name = f"{node.name}__delay_{a.name}"
            index = state(a.name, channels(a), lag, meta[a.name].rate)
            plan.append(("delay", name, a.name, index, lag))
            renamed[a.name] = name
    return tuple(_refs(node.args, renamed))


def _refs(a, renamed: dict | None = None):
    renamed = renamed or {}
    if isinstance(a, fx.Node):
        return _Ref(renamed.get(a.name, a.name))
    if isinstance(a, (list, tuple)):
        return type(a)(_refs(v, renamed) for v in a)
    if isinstance(a, dict):
        return {k: _refs(v, renamed) for k, v in a.items()}
    return a


@torch.no_grad()
def stream_run(step: StreamingModel, signal: torch.Tensor) -> list[torch.Tensor]:
    """Run ``step`` over ``signal`` ``(1, C, T)``, ``T`` a multiple of the block, from zero states;
    returns each output concatenated over time (stream order, delayed by ``output_delays``)."""
    b = step.block_samples
    if signal.shape[-1] % b:
        raise ValueError(f"signal length {signal.shape[-1]} is not a multiple of the block {b}")
    states = step.initial_states()
    chunks: list[list[torch.Tensor]] = [[] for _ in step.output_rates]
    for i in range(0, signal.shape[-1], b):
        res = step(signal[..., i:i + b], *states)
        n = len(step.output_rates)
        for k in range(n):
            chunks[k].append(res[k])
        states = list(res[n:])
    return [torch.cat(c, dim=-1) for c in chunks]
