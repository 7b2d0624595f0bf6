"""Registry contract, checked for every registered model."""

import pytest

torch = pytest.importorskip("torch")

from wearable.models import UnknownModelError, config_class, create, list_models  # noqa: E402


def test_registry_lists_models():
    assert "dscnn_tiny" in list_models()
    assert list_models() == sorted(list_models())


@pytest.mark.parametrize("name", list_models())
def test_forward_shape_and_config(name):
    model = create(name, window_samples=256, num_classes=3).eval()
    cfg = model.config
    assert type(cfg) is config_class(name)
    assert cfg.window_samples == 256 and cfg.num_classes == 3 and cfg.sampling_rate_hz > 0
    out = model(torch.randn(2, cfg.in_channels, cfg.window_samples))
    out = out[0] if isinstance(out, tuple) else out  # two-output models (ppg_dualstream): class logits first
    assert out.shape[:2] == (2, 3)


@pytest.mark.parametrize("name", list_models())
def test_create_is_deterministic_under_seed(name):
    torch.manual_seed(0)
    a = create(name).state_dict()
    torch.manual_seed(0)
    b = create(name).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_unknown_model_names_the_registered_ones():
    with pytest.raises(UnknownModelError, match="dscnn_tiny"):
        create("no_such_model")


def test_unknown_config_field_is_rejected():
    with pytest.raises(TypeError, match="unknown config field"):
        create("dscnn_tiny", widht=3)


def test_bad_sampling_rate_is_rejected():
    with pytest.raises(ValueError, match="sampling_rate_hz"):
        create("dscnn_tiny", sampling_rate_hz=0)
