"""Where the codec loses quality: pocketsphinx WER and basic-pitch note F1 of held-out clips
resynthesised through the mel-RVQ codec at two frame rates (20 ms and 40 ms hop), with 1, 2 or 4
codebooks, and of the unquantised log-mel through the same Griffin-Lim (no codebook at all).

    uv run --locked --no-sync python packages/audio/benchmarks/codec_ceiling.py   # ~5 min on 2 busy cores

Writes records/codec_ceiling.json and prints a Markdown table.
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

from moe_zoo.audio import data
from moe_zoo.audio import metrics as M
from moe_zoo.audio.codec import CodecConfig, MelRVQCodec
from moe_zoo.core.reporting import markdown_table

N_SPEECH, N_MUSIC = 12, 8


def score(clips, waves, vocab, bp) -> dict:
    errs = [M.word_errors(c.text, M.transcribe(w, vocab)) for c, w in zip(clips, waves) if c.task == "speech"]
    f1 = [M.note_f1(M.transcribe_notes(w, bp), c.notes) for c, w in zip(clips, waves) if c.task == "music"]
    return {"wer": sum(e for e, _ in errs) / sum(n for _, n in errs), "note_f1": float(np.mean(f1))}


def main() -> int:
    torch.set_num_threads(1)
    train, held = data.load_builtin("train"), data.load_builtin("heldout")
    clips = ([c for c in held if c.task == "speech" and c.meta.get("voice") in ("espeak", "flite")][:N_SPEECH]
             + [c for c in held if c.task == "music" and c.notes][:N_MUSIC])
    vocab, bp = data.sentence_vocabulary(), M.default_basic_pitch_model()
    rows = [{"audio": "recording", **score(clips, [c.audio for c in clips], vocab, bp)}]
    for hop in (320, 640):
        codec = MelRVQCodec(CodecConfig(hop=hop)).fit([c.audio for c in train], seed=0)
        mels = [codec.log_mel(c.audio) for c in clips]
        rows.append({"audio": f"{1000 * hop // 16000} ms hop, unquantised log-mel",
                     **score(clips, [codec.log_mel_to_wave(m) for m in mels], vocab, bp)})
        for k in (1, 2, 4):
            waves = [codec.log_mel_to_wave(codec.codes_to_log_mel(codec.encode(c.audio))) if k == 4 else
                     codec.log_mel_to_wave(sum(codec.codebooks[j][codes[j]] for j in range(k)))
                     for c, codes in ((c, codec.encode(c.audio)) for c in clips)]
            rows.append({"audio": f"{1000 * hop // 16000} ms hop, first {k} of 4 codebooks", **score(clips, waves, vocab, bp)})
        print(rows[-1], flush=True)
    out = Path(__file__).resolve().parent / "records" / "codec_ceiling.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"n_speech": N_SPEECH, "n_music": N_MUSIC, "rows": rows}, indent=1))
    print(markdown_table(["audio (held-out clips)", "speech WER ↓", "note F1 ↑"],
                         [[r["audio"], f"{r['wer']:.3f}", f"{r['note_f1']:.3f}"] for r in rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
