"""Tokens the user phase reads on MovieLens-100K: whole user texts against BAHE's inputs.

The text encoder runs every user text through every layer. BAHE runs each
distinct behaviour text and each profile through the layers below the split
once, and each user's sequence (profile tokens plus one position per
behaviour) through the layers above it. Counting tokens per layer bounds the
speedup BAHE can reach (attention's quadratic term favours it further, since
its sequences are shorter). Tokens are counted with the bundled MiniLM
tokenizer, special tokens included; "cut" figures apply the lengths the
encoders use (``encode.max_length`` for texts, ``model.bahe.behaviour_max_length``
per behaviour, ``model.train.user_max_length`` positions per BAHE sequence).

    .venv/bin/python -m experiments.bahe_tokens        # writes experiments/results/bahe-tokens/
"""

import argparse
import json
import tempfile
from pathlib import Path

from marc_batch.config import Config
from marc_batch.data.ingest import ingest
from marc_batch.data.texts import user_behaviour_texts
from marc_batch.model.backbone import load_tokenizer, resolve_path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = 6  # all-MiniLM-L6-v2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "experiments/results/bahe-tokens")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as store:
        config = Config(store={"root": store})
        catalogue, _ = ingest(config)
    tokenizer = load_tokenizer(resolve_path("minilm"))

    def lengths(texts: list[str]) -> list[int]:
        return [len(ids) for ids in tokenizer(texts)["input_ids"]]

    users = user_behaviour_texts(
        catalogue.users, catalogue.interactions, catalogue.items, config.templates
    ).to_pylist()
    text_lengths = lengths(catalogue.user_texts["text"].to_pylist())
    profile_lengths = lengths([user["profile"] for user in users])
    held = [len(user["behaviours"]) for user in users]
    distinct = sorted({text for user in users for text in user["behaviours"]})
    behaviour_lengths = lengths(distinct)
    positions = config.model.train.user_max_length
    cut_sequences = [
        min(p, positions) + min(b, max(positions - p, 0))
        for p, b in zip(profile_lengths, held, strict=True)
    ]
    figures = {
        "users": len(users),
        "user_text_tokens": sum(text_lengths),
        "user_text_tokens_cut": sum(min(n, config.encode.max_length) for n in text_lengths),
        "behaviours_held": sum(held),
        "distinct_behaviours": len(distinct),
        "distinct_behaviour_tokens": sum(behaviour_lengths),
        "distinct_behaviour_tokens_cut": sum(
            min(n, config.model.bahe.behaviour_max_length) for n in behaviour_lengths
        ),
        "profile_tokens": sum(profile_lengths),
        "distinct_profiles": len({user["profile"] for user in users}),
        "sequence_positions": sum(p + b for p, b in zip(profile_lengths, held, strict=True)),
        "sequence_positions_cut": sum(cut_sequences),
    }
    # Token-layers: tokens times the layers that read them, per encoder.
    split = LAYERS + config.model.bahe.split_layer
    upper = (LAYERS - split) * figures["sequence_positions"]
    warm = split * figures["profile_tokens"] + upper
    cold = warm + split * figures["distinct_behaviour_tokens"]
    figures |= {
        "split_layer": split,
        "token_layers_text": LAYERS * figures["user_text_tokens"],
        "token_layers_text_cut": LAYERS * figures["user_text_tokens_cut"],
        "token_layers_bahe": cold,
        "token_layers_bahe_cached_behaviours": warm,
    }
    for name in ("token_layers_bahe", "token_layers_bahe_cached_behaviours"):
        for text in ("token_layers_text", "token_layers_text_cut"):
            figures[f"ratio_{text.removeprefix('token_layers_')}_to_{name}"] = round(
                figures[text] / figures[name], 2
            )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tokens.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
