"""Cross-modal self-supervised student and VQ tokenizer (issue 5): registered here once built."""

__all__: list[str] = []
