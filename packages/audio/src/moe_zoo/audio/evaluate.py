"""Evaluation of a trained generator on held-out clips: teacher-forced loss, generated-audio
metrics (WER, MCD, note F1, chroma, speech-vs-music), expert usage and active parameters."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from moe_zoo.audio import metrics as M
from moe_zoo.audio.audio_io import SAMPLE_RATE
from moe_zoo.audio.batching import Example, collate, encode_clips
from moe_zoo.audio.data import Clip, sentence_vocabulary
from moe_zoo.audio.generate import TEMPERATURE, TOP_K
from moe_zoo.audio.model import UniMoEAudio
from moe_zoo.audio.predict import synthesize_tokens
from moe_zoo.audio.train import codec_loss
from moe_zoo.core.runtime import get_logger

_log = get_logger(__name__)


@dataclass
class Evaluation:
    metrics: dict[str, float]
    usage: dict[str, list[list[float]]] = field(default_factory=dict)  # task -> layer -> expert share
    examples: list[tuple[Clip, np.ndarray]] = field(default_factory=list)


def expert_usage(model: UniMoEAudio, examples: list[Example]) -> tuple[dict[str, list[list[float]]], float]:
    """Share of the tokens of each task that each router id receives, per layer (routed, shared,
    null), and the mean number of FFN experts (routed non-null + shared) active per token."""
    usage, active, tokens = {}, 0.0, 0
    c = model.config
    n_ids = c.n_routed + c.n_shared + len(c.null_ids)
    with torch.no_grad():
        for task in sorted({e.task for e in examples}):
            batch = collate([e for e in examples if e.task == task], c.codebook_size)
            out = model(batch.cond, batch.audio)
            real = (batch.cond != 0) | (batch.audio[..., 0] >= 0)
            mask = real.reshape(-1)
            layers = []
            for r in out.routings:
                idx = r.indices[mask]
                counts = torch.bincount(idx[idx >= 0], minlength=n_ids).float()
                layers.append((counts / mask.sum()).tolist())
                ffn = ((idx >= 0) & (idx < c.n_routed + c.n_shared)).sum(-1).float()
                active += float(ffn.sum())
                tokens += int(mask.sum())
            usage[task] = layers
    return usage, active / max(tokens, 1)


def active_parameters(model: UniMoEAudio, ffn_experts_per_token: float) -> float:
    """Parameters a token uses: everything but the expert bank, plus the active experts' share of
    it (dense model: all its parameters). Codec buffers are not parameters."""
    total = sum(p.numel() for p in model.parameters())
    if model.config.ffn == "dense":
        return float(total)
    bank = sum(b.ffn.experts.w_in.numel() + b.ffn.experts.w_out.numel() for b in model.blocks)
    per_expert_per_layer = bank / (len(model.blocks) * model.blocks[0].ffn.experts.n_experts)
    return total - bank + ffn_experts_per_token * per_expert_per_layer * len(model.blocks)


def teacher_forced_loss(model: UniMoEAudio, examples: list[Example]) -> dict[str, float]:
    out = {}
    with torch.no_grad():
        for task in sorted({e.task for e in examples}):
            batch = collate([e for e in examples if e.task == task], model.config.codebook_size)
            out[f"{task}_ce"] = float(codec_loss(model(batch.cond, batch.audio).logits, batch.target)) / model.config.n_codebooks
    return out


def evaluate(model: UniMoEAudio, clips: list[Clip], *, n_speech: int = 12, n_music: int = 12, seed: int = 0,
             basic_pitch_model=None, generate: bool = True) -> Evaluation:
    """Metrics on held-out ``clips``: per-task teacher-forced CE (per codebook), and on up to
    ``n_speech`` / ``n_music`` generated clips WER (pocketsphinx, word-loop grammar over the
    sentence vocabulary: template sentences only), MCD to the reference recording, note F1
    (basic-pitch, when its ONNX model is given or installed) and chroma similarity to the reference,
    and the speech-vs-music accuracy of silero-vad on all generated clips."""
    model.eval()
    examples = encode_clips(model, clips)
    metrics = teacher_forced_loss(model, examples)
    usage, experts = expert_usage(model, examples) if model.config.ffn == "moe" else ({}, float("nan"))
    metrics["ffn_experts_per_token"] = experts
    metrics["active_params"] = active_parameters(model, experts)
    if not generate:
        return Evaluation(metrics, usage)
    bp = basic_pitch_model or M.default_basic_pitch_model()
    speech = [c for c in clips if c.task == "speech" and c.meta.get("voice") in ("espeak", "flite")][:n_speech]
    music = [c for c in clips if c.task == "music" and c.notes][:n_music]
    vocab = sentence_vocabulary()
    errors = words = 0
    mcd, f1, chroma, vad_ok, gen_seconds, audio_seconds = [], [], [], [], 0.0, 0.0
    generated = []
    for i, clip in enumerate(speech + music):
        began = time.perf_counter()
        wave = synthesize_tokens(model, clip.cond, max_seconds=3.5, seed=seed + i, temperature=TEMPERATURE,
                                  top_k=TOP_K)
        gen_seconds += time.perf_counter() - began
        audio_seconds += len(wave) / SAMPLE_RATE
        generated.append((clip, wave))
        is_speech = M.speech_probability(wave) > 0.5
        vad_ok.append(is_speech == (clip.task == "speech"))
        if clip.task == "speech":
            e, n = M.word_errors(clip.text, M.transcribe(wave, vocab))
            errors, words = errors + e, words + n
            mcd.append(M.mel_cepstral_distortion(wave, clip.audio))
        else:
            if bp is not None:
                f1.append(M.note_f1(M.transcribe_notes(wave, bp), clip.notes))
            chroma.append(M.chroma_similarity(wave, clip.audio))
    metrics.update({
        "wer": errors / max(words, 1) if speech else float("nan"),
        "mcd": float(np.mean(mcd)) if mcd else float("nan"),
        "note_f1": float(np.mean(f1)) if f1 else float("nan"),
        "chroma": float(np.mean(chroma)) if chroma else float("nan"),
        "vad_accuracy": float(np.mean(vad_ok)) if vad_ok else float("nan"),
        "real_time_factor": gen_seconds / max(audio_seconds, 1e-9),
    })
    return Evaluation(metrics, usage, generated)


def reference_scores(clips: list[Clip], codec, *, n_speech: int = 12, n_music: int = 12, basic_pitch_model=None) -> dict:
    """The same metrics on the real recordings and on their codec resynthesis (the ceiling a
    generator using this codec can reach)."""
    bp = basic_pitch_model or M.default_basic_pitch_model()
    vocab = sentence_vocabulary()
    speech = [c for c in clips if c.task == "speech" and c.meta.get("voice") in ("espeak", "flite")][:n_speech]
    music = [c for c in clips if c.task == "music" and c.notes][:n_music]
    out = {}
    for name, fn in (("recording", lambda c: c.audio), ("codec", lambda c: codec.decode(codec.encode(c.audio)))):
        waves = [(c, fn(c)) for c in speech + music]
        errs = [M.word_errors(c.text, M.transcribe(w, vocab)) for c, w in waves if c.task == "speech"]
        out[name] = {
            "wer": sum(e for e, _ in errs) / max(sum(n for _, n in errs), 1),
            "mcd": float(np.mean([M.mel_cepstral_distortion(w, c.audio) for c, w in waves if c.task == "speech"])),
            "note_f1": float(np.mean([M.note_f1(M.transcribe_notes(w, bp), c.notes) for c, w in waves
                                      if c.task == "music"])) if bp else float("nan"),
            "chroma": float(np.mean([M.chroma_similarity(w, c.audio) for c, w in waves if c.task == "music"])),
            "vad_accuracy": float(np.mean([(M.speech_probability(w) > 0.5) == (c.task == "speech") for c, w in waves])),
        }
    return out
