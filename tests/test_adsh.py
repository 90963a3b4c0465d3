"""ADSH soft similarity, loss terms and DCC update against the release fixture."""

from pathlib import Path

import pytest
import torch

from semicon_core.adsh import adsh_loss, dcc_update, labels_to_onehot, signed, soft_similarity

FIXTURE = Path(__file__).parent / "fixtures" / "semicon_reference.pt"
TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


@pytest.fixture(scope="module")
def reference():
    data = torch.load(FIXTURE, weights_only=True)["adsh"]
    return {
        "labels": labels_to_onehot(data["database_labels"].long(), int(data["num_classes"])),
        "index": data["sample_index"].long(),
        "similarity": data["soft_similarity"].float(),
        "outputs": data["F"].float(),
        "codes": data["B"].float(),
        "stored": data["U"].float(),
        "codes_after": data["B_after_dcc"].float(),
        "gamma": float(data["gamma"]),
        "loss": float(data["loss"]),
        "hash_loss": float(data["hash_loss"]),
        "quantization_loss": float(data["quantization_loss"]),
    }


def test_soft_similarity_matches_release(reference):
    similarity = soft_similarity(reference["labels"][reference["index"]], reference["labels"])
    torch.testing.assert_close(similarity, reference["similarity"], **TOLERANCE)


def test_loss_terms_match_release(reference):
    codes = reference["codes"]
    terms = adsh_loss(reference["outputs"], codes, reference["similarity"],
                      codes[reference["index"]], reference["gamma"])
    for name in ("loss", "hash_loss", "quantization_loss"):
        torch.testing.assert_close(terms[name], torch.tensor(reference[name]), **TOLERANCE)


def test_loss_gradient_reaches_outputs(reference):
    outputs = reference["outputs"].clone().requires_grad_(True)
    codes = reference["codes"]
    adsh_loss(outputs, codes, reference["similarity"], codes[reference["index"]])["loss"].backward()
    assert outputs.grad is not None
    assert outputs.grad.abs().sum() > 0


def test_dcc_matches_release(reference):
    updated = dcc_update(reference["codes"], reference["stored"], reference["index"],
                         reference["similarity"], reference["gamma"])
    torch.testing.assert_close(updated, reference["codes_after"], **TOLERANCE)
    assert set(updated.unique().tolist()) <= {-1.0, 1.0}


def test_dcc_leaves_input_unchanged(reference):
    codes = reference["codes"].clone()
    dcc_update(codes, reference["stored"], reference["index"], reference["similarity"])
    torch.testing.assert_close(codes, reference["codes"])


def test_dcc_maps_zero_to_plus_one():
    codes = torch.ones(4, 6)
    outputs = torch.zeros(2, 6)
    similarity = torch.zeros(2, 4)
    updated = dcc_update(codes, outputs, torch.tensor([0, 1]), similarity, gamma=200.0)
    assert torch.equal(updated, torch.ones(4, 6))


def test_signed_has_no_zero():
    values = torch.tensor([-0.5, 0.0, 0.3, -0.0])
    assert signed(values).tolist() == [-1.0, 1.0, 1.0, 1.0]


def test_single_class_similarity_rejected():
    labels = labels_to_onehot(torch.zeros(5, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="single class"):
        soft_similarity(labels[:2], labels)


def test_multi_hot_similarity():
    labels = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    similarity = soft_similarity(labels, labels)
    # Images 0 and 1 share class 1; image 2 shares nothing with either.
    assert similarity[0, 1] == 1.0
    assert similarity[0, 2] < 1.0
