import numpy as np
import pytest
from audio_helpers import tone

from moe_zoo.audio import metrics as M


def test_wer_edit_distance():
    assert M.word_errors("the red cat", "the red cat") == (0, 3)
    assert M.word_errors("the red cat", "a red dog cat") == (2, 3)
    assert M.wer(["a b", "c d e"], ["a", "c d e f"]) == pytest.approx(2 / 5)


def test_note_f1_matching():
    ref = [(0.0, 0.5, 60), (0.5, 1.0, 62), (1.0, 1.5, 64)]
    assert M.note_f1(ref, ref) == 1.0
    est = [(0.02, 0.5, 60), (0.5, 1.0, 61), (1.2, 1.5, 64)]  # one hit, wrong pitch, late onset
    assert M.note_f1(est, ref) == pytest.approx(1 / 3)
    assert M.note_f1([], ref) == 0.0


def test_chroma_and_mcd():
    a, a_oct, b = tone(440, 0.5), tone(880, 0.5), tone(466.16, 0.5)
    assert M.chroma_similarity(a, a_oct) > 0.9 > M.chroma_similarity(a, b)
    assert M.mel_cepstral_distortion(a, a) == pytest.approx(0.0, abs=1e-3)
    noise = np.random.default_rng(0).normal(0, 0.3, 8000).astype(np.float32)
    assert M.mel_cepstral_distortion(a, noise) > 5.0


def test_vad_tells_a_tone_from_nothing():
    assert M.speech_probability(np.zeros(16000, np.float32)) == 0.0
    assert 0.0 <= M.speech_probability(tone(200, 1.0)) <= 1.0
