"""UniMoE-Audio: dynamic-capacity MoE (top-p routing, null and shared experts) for unified speech
and music generation, trained with the three-stage curriculum, at CPU scale.

    from moe_zoo import audio
    wave = audio.tts("the red cat sees four dogs")                    # float32, 16 kHz
    song = audio.music({"instrument": "flute", "bpm": 110, "notes": [(72, 1), (74, 1), (76, 2)]})
    audio.write_audio("cat.wav", wave)
"""

from moe_zoo.audio.audio_io import SAMPLE_RATE, read_audio, write_audio
from moe_zoo.audio.codec import CodecConfig, MelRVQCodec, NeuralCodec
from moe_zoo.audio.data import Clip, load_builtin, read_libritts, read_ljspeech, read_musiccaps
from moe_zoo.audio.evaluate import Evaluation, evaluate
from moe_zoo.audio.model import UniMoEAudio, UniMoEAudioConfig
from moe_zoo.audio.pipeline import train
from moe_zoo.audio.predict import load, music, tts
from moe_zoo.audio.train import TrainConfig

__all__ = [
    "SAMPLE_RATE", "Clip", "CodecConfig", "Evaluation", "MelRVQCodec", "NeuralCodec", "TrainConfig", "UniMoEAudio",
    "UniMoEAudioConfig", "evaluate", "load", "load_builtin", "music", "read_audio", "read_libritts", "read_ljspeech",
    "read_musiccaps", "train", "tts", "write_audio",
]
