"""A tiny random BERT with a real fast tokenizer, built locally: no downloads."""

import pytest
import torch
from transformers import BertConfig, BertModel, BertTokenizerFast

WORDS = [
    "the",
    "a",
    "movie",
    "user",
    "rated",
    "star",
    "war",
    "love",
    "night",
    "city",
    "dark",
    "blue",
    "king",
    "river",
    "girl",
    "man",
]


class TinyEmbedder(torch.nn.Module):
    """Mean-pooled tiny BERT plus a linear head: the shape of a real encoder, at toy size."""

    def __init__(self, tokenizer: BertTokenizerFast, k: int = 8) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.tokenizer = tokenizer
        config = BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=128,
        )
        self.model = BertModel(config).eval()
        self.head = torch.nn.Linear(32, k)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        weights = attention_mask.unsqueeze(-1).to(states.dtype)
        return self.head((states * weights).sum(1) / weights.sum(1))


@pytest.fixture(scope="session")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> BertTokenizerFast:
    vocab = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    return BertTokenizerFast(vocab_file=str(vocab))


@pytest.fixture(scope="session")
def embedder(tokenizer: BertTokenizerFast) -> TinyEmbedder:
    return TinyEmbedder(tokenizer)


def texts(count: int, seed: int = 0) -> list[str]:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 40, (count,), generator=generator)
    return [
        " ".join(
            WORDS[int(i)] for i in torch.randint(0, len(WORDS), (int(n),), generator=generator)
        )
        for n in lengths
    ]
