import numpy as np
import pytest
import torch
from audio_helpers import TINY_CODEC, tone

from moe_zoo.audio.codec import CodecConfig, MelRVQCodec, NeuralCodec
from moe_zoo.audio.tokens import apply_delay, revert_delay, specials
from moe_zoo.core import InputError


def test_delay_pattern_layout_and_round_trip():
    codes = torch.randint(0, 16, (3, 7))
    grid = apply_delay(codes, (0, 1, 3), 16)
    pad, bos, eos = specials(16)
    assert grid.shape == (3, 7 + 3 + 1)
    assert grid[1, 0] == bos and grid[2, :3].eq(bos).all()
    assert grid[0, 7] == eos and grid[1, 8] == eos and grid[2, 10] == eos
    assert grid[0, 8:].eq(pad).all()
    assert torch.equal(grid[2, 3:10], codes[2])
    assert torch.equal(revert_delay(grid, (0, 1, 3), 16), codes)


def test_delay_rejects_wrong_codebook_count():
    with pytest.raises(InputError):
        apply_delay(torch.zeros(2, 5, dtype=torch.long), (0, 1, 2), 16)


def test_mel_rvq_codec_encode_decode_and_residual_stages_help():
    waves = [tone(f) for f in (220, 330, 440, 660)]
    codec = MelRVQCodec(TINY_CODEC).fit(waves, iters=8)
    codes = codec.encode(waves[0])
    assert codes.shape[0] == 2 and codes.dtype == torch.long and int(codes.max()) < 16
    wave = codec.decode(codes)
    assert wave.dtype == np.float32 and abs(len(wave) - len(waves[0])) <= TINY_CODEC.hop
    target = codec.log_mel(waves[2])
    one = codec.codebooks[0][codec.encode(waves[2])[0]]
    both = codec.codes_to_log_mel(codec.encode(waves[2]))
    assert (both - target).pow(2).mean() < (one - target).pow(2).mean()
    # a decoded 440 Hz tone is still a 440 Hz tone
    spectrum = np.abs(np.fft.rfft(codec.decode(codec.encode(waves[2]))))
    assert abs(np.fft.rfftfreq(len(spectrum) * 2 - 2, 1 / 16_000)[spectrum.argmax()] - 440) < 60


def test_codec_rejects_bad_codes_and_short_audio():
    codec = MelRVQCodec(TINY_CODEC)
    with pytest.raises(InputError):
        codec.decode(torch.full((2, 4), 99))
    with pytest.raises(InputError):
        codec.encode(np.zeros(10, np.float32))


def test_neural_codec_wrapper_with_tiny_random_encodec():
    transformers = pytest.importorskip("transformers")
    config = transformers.EncodecConfig(target_bandwidths=[6.0], sampling_rate=16_000, num_filters=4,
                                        hidden_size=16, codebook_size=32, upsampling_ratios=[8, 8],
                                        num_residual_layers=1, num_lstm_layers=1, codebook_dim=16)
    torch.manual_seed(0)
    codec = NeuralCodec(transformers.EncodecModel(config))
    codes = codec.encode(tone(300, 0.05))
    assert codes.ndim == 2 and int(codes.max()) < 32
    wave = codec.decode(codes)
    assert wave.ndim == 1 and np.isfinite(wave).all() and len(wave) > 0


def test_codec_decodes_coarse_frames_at_the_finer_synthesis_hop():
    codec = MelRVQCodec(TINY_CODEC)
    frames = torch.zeros(7, TINY_CODEC.n_mels)
    wave = codec.log_mel_to_wave(frames)
    factor = TINY_CODEC.hop // TINY_CODEC.synthesis_hop
    assert factor == 2
    # Griffin-Lim (centred STFT) of 7 * 2 frames at the synthesis hop
    assert len(wave) == (7 * factor - 1) * TINY_CODEC.synthesis_hop
    with pytest.raises(InputError):
        CodecConfig(hop=100, synthesis_hop=30)
