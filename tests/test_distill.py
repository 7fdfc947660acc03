"""``melodex distill``: a student of a real teacher (melodex-base) on a few generated tracks.

Heavy: it loads the real default model and trains a small head (a few seconds).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from melodex.errors import MelodexError, ModelLoadError
from melodex.lab.distill import (
    agreement_k,
    audio_items,
    distill,
    split_heldout,
    student_windows,
    top_k_overlap,
)
from melodex.models import load_model
from melodex.models.student import DistilledStudent
from tests.music_fixtures import tone_piece, write_audio

pytestmark = pytest.mark.heavy


@pytest.fixture(scope="module")
def tracks(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tracks")
    kinds = ("plucked", "organ", "clicks")
    for i in range(6):
        write_audio(folder / f"t{i}.wav", tone_piece(i, 6.0, kind=kinds[i % 3]))
    (folder / "notes.txt").write_text("not audio")
    return folder


@pytest.fixture(scope="module")
def distilled(base_model, tracks):
    calls = []
    student, report = distill(
        base_model,
        tracks,
        heldout=0.34,
        epochs=60,
        hidden=64,
        base=base_model,
        speed_tracks=1,
        progress=lambda done, total, note: calls.append((done, total, note)),
    )
    return student, report, calls


def test_student_learns_the_teacher(distilled, base_model, tracks) -> None:
    student, report, calls = distilled
    assert report.n_train == 4 and report.n_heldout == 2
    # the head fits its training tracks closely, and held-out tracks point the same way
    assert report.train_cosine > 0.95 and report.final_loss < 0.05
    assert report.heldout_cosine > 0.5
    assert 0.0 <= report.top10_overlap <= 1.0 and report.top_k == 1
    assert set(report.speed) == {"student", "teacher", "melodex-base"}
    assert all(s["tracks_per_s"] > 0 for s in report.speed.values())
    # progress: (done, total, note), monotone, ending at total
    dones = [d for d, _, _ in calls]
    assert dones == sorted(dones) and dones[-1] == calls[-1][1]
    assert any(n.startswith("train: epoch") for _, _, n in calls)


def test_student_is_a_joint_model_naming_its_teacher(distilled, base_model, tracks, tmp_path):
    student, report, _ = distilled
    assert student.config.name == "student-of-melodex-base"
    assert student.options.teacher == "melodex-base"
    assert student.options.teacher_identity == base_model.identity
    assert student.dim == base_model.dim and student.tag_names == base_model.tag_names
    # text goes through the teacher's tower: the same vectors
    texts = ["piano", "a calm organ piece"]
    np.testing.assert_allclose(student.encode_text(texts), base_model.encode_text(texts), atol=1e-6)
    # saved and loaded by folder like any model; the same audio vectors
    folder = student.save(tmp_path / "student")
    again = load_model(folder)
    assert isinstance(again, DistilledStudent) and again.identity == student.identity
    path = sorted(tracks.glob("*.wav"))[0]
    v = again.embed_file(path).vector
    np.testing.assert_allclose(v, student.embed_file(path).vector, atol=1e-5)
    assert np.isclose(np.linalg.norm(v), 1.0, atol=1e-5)
    # the windows distill trained on are those the student embeds
    assert len(student_windows(path)) == len(again.embed_file(path).window_vectors)


def test_a_changed_teacher_is_refused(distilled, tmp_path) -> None:
    student, _, _ = distilled
    folder = student.save(tmp_path / "s2")
    import json

    config = json.loads((folder / "config.json").read_text())
    config["options"]["teacher_identity"] = "melodex-base@0000"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="distil again"):
        load_model(folder).encode_text("piano")


def test_items_split_and_overlap(tracks, tmp_path) -> None:
    items = audio_items(tracks)
    assert [p.name for p in items] == [f"t{i}.wav" for i in range(6)]
    train, held = split_heldout(items, 0.34)
    assert len(held) == 2 and not set(train) & set(held)
    assert set(split_heldout(list(reversed(items)), 0.34)[1]) == set(held)  # order-independent
    # place-independent: the same names split the same way in another folder
    moved = [tmp_path / "elsewhere" / p.name for p in items]
    assert [p.name for p in split_heldout(moved, 0.34)[1]] == [p.name for p in held]
    with pytest.raises(MelodexError, match="at least 2"):
        audio_items(tmp_path)
    rng = np.random.default_rng(0)
    q, a = rng.standard_normal((5, 4)), rng.standard_normal((12, 4))
    assert top_k_overlap(q, a, a, 10) == 1.0
    assert top_k_overlap(q, a, -a, 3) < 1.0
    assert agreement_k(2) == 1 and agreement_k(12) == 6 and agreement_k(40) == 10
