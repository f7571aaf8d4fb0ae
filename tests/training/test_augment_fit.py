"""TrainConfig.augment in the one engine: exact against each sequence alone, reproducible."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from varlen.data import Augmentation, Ragged, augment
from varlen.training.loop import TrainConfig, fit, sequence_task
from varlen.training.models import SequenceClassifier
from varlen.training.per_step import fit_steps

AUGMENT = Augmentation(crop=0.6, warp=0.4, scale=0.3, shift=0.5)


def data(n=12, seed=0):
    """Float32 sequences of lengths 0..20 (one of length 0), labels 0..2."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 21, n)
    lengths[3] = 0
    x = Ragged.from_sequences(
        [rng.normal(size=(T, 2)).astype(np.float32) for T in lengths], dtype=np.float32
    )
    return x, rng.integers(0, 3, n)


def model(seed=0, **options):
    """A seeded small classifier with a pooled front-end (what the CLI defaults build)."""
    torch.manual_seed(seed)
    return SequenceClassifier(
        2,
        3,
        hidden_size=5,
        bidirectional=True,
        pooling="mean",
        conv_channels=(4, 4),
        conv_kernels=(3, 3),
        conv_pools=(2, 1),
        series_norm=True,
        **options,
    )


@pytest.mark.parametrize("technique", ["mask", "bucket", "pack", "lanes"])
def test_augmented_batch_loss_is_each_augmented_sequence_alone(technique):
    """The batch's loss is the mean loss of its augmented sequences, each run alone.

    Techniques run in float32 (their collate), so the tolerance is float32's.
    """
    x, y = data()
    net = model()
    indices = np.array([5, 3, 0, 9, 2, 11])
    config = TrainConfig(technique=technique, augment=AUGMENT)
    torch.default_generator.manual_seed(123)
    got = sequence_task(x, y, config).batch_loss(net, indices)
    torch.default_generator.manual_seed(123)
    key = int(torch.randint(0, 2**62, (1,), generator=torch.default_generator))
    losses = []
    for i in indices:
        alone = augment([x[int(i)]], AUGMENT, key=key, ids=[int(i)])[0]
        scores = net(torch.tensor(alone)[None])
        losses.append(torch.nn.functional.cross_entropy(scores, torch.tensor([int(y[i])])))
    torch.testing.assert_close(got.loss, torch.stack(losses).mean(), rtol=1e-5, atol=1e-6)


def test_fit_with_augment_is_reproducible_and_differs_from_plain():
    """The same seed gives the same weights; augmentation changes what is learned."""
    x, y = data()
    config = TrainConfig(technique="mask", epochs=3, batch_size=4, augment=AUGMENT, seed=1)

    def weights(config):
        net = model(seed=2)
        fit(net, x, y, config=config, progress=False)
        return net.state_dict()

    first, second = weights(config), weights(config)
    for name in first:
        torch.testing.assert_close(first[name], second[name], rtol=0, atol=0)
    plain = weights(dataclasses.replace(config, augment=None))
    assert any(not torch.equal(first[name], plain[name]) for name in first)


def test_fit_resume_with_augment_equals_uninterrupted(tmp_path):
    """Augmentation keys come from the epoch's seeded generator: resuming is exact."""
    x, y = data()
    config = TrainConfig(technique="bucket", epochs=4, batch_size=4, augment=AUGMENT)
    whole = model(seed=3)
    fit(whole, x, y, config=config, progress=False)
    part = model(seed=3)
    fit(part, x, y, config=dataclasses.replace(config, epochs=2), checkpoint=tmp_path / "c.pt",
        progress=False)  # fmt: skip
    resumed = model(seed=3)
    fit(resumed, x, y, config=config, checkpoint=tmp_path / "c.pt", resume=True, progress=False)
    for name, value in whole.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value, rtol=0, atol=0)


def test_augment_is_refused_per_step_and_must_be_an_augmentation():
    """Per-step targets would move with the steps: one clear error; a wrong type too."""
    x, _ = data()
    torch.manual_seed(0)
    per_step = SequenceClassifier(2, 3, hidden_size=4, per_step=True)
    y = Ragged(np.zeros(len(x.values), dtype=np.int64), x.offsets)
    with pytest.raises(ValueError, match="Pass augment=None for per-step models"):
        fit_steps(per_step, x, y, config=TrainConfig(augment=AUGMENT), progress=False)
    with pytest.raises(TypeError, match=r"augment must be a varlen\.data\.augment\.Augmentation"):
        TrainConfig(augment=0.5)  # type: ignore[arg-type]
