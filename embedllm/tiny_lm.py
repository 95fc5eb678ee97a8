"""A tiny random causal LM saved like a Hugging Face checkpoint, for tests and fixtures that run the real lm-eval.

`build_tiny_lm(dir)` trains a small byte-level BPE tokenizer with `tokenizers` on a fixed corpus and saves a
randomly initialised LlamaForCausalLM (hidden size 64, 2 layers) next to it with save_pretrained. lm-eval's hf
backend loads it with `pretrained=<dir>` offline in about a second; its answers are random but deterministic
(fixed seed), which is all the plumbing tests need.
"""

from __future__ import annotations

from pathlib import Path

_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Question: What is 2 + 3? Answer: 5",
    "Question: Which planet is known as the red planet? Answer: Mars",
    "0 1 2 3 4 5 6 7 8 9 10 11 12 100 1000 plus minus times divided equals",
    "Water boils at 100 degrees Celsius at sea level. Ice melts at 0 degrees.",
    "Paris is the capital of France. Berlin is the capital of Germany. Rome is in Italy.",
    "If all cats are animals and Tom is a cat, then Tom is an animal. True False Yes No",
    "A B C D E abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ .,;:!?'\"()[]{}-+*/=#$%&",
]

# ChatML as Qwen/SmolLM2 write it: system, user and assistant turns between <|im_start|> and <|im_end|>
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def _train_tokenizer(vocab_size: int):
    """Return a PreTrainedTokenizerFast wrapping a byte-level BPE tokenizer trained on the fixed corpus."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def build_tiny_lm(
    directory: str | Path, *, seed: int = 0, vocab_size: int = 512, chat_template: str | None = None
) -> Path:
    """Return DIRECTORY after saving a tiny random LlamaForCausalLM (hidden 64) and its BPE tokenizer there.

    CHAT_TEMPLATE (e.g. CHATML_TEMPLATE), if given, is set on the tokenizer, so lm-eval's --apply_chat_template
    renders prompts with it."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer(vocab_size)
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.eval()
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def fine_tune_tiny_lm(
    directory: str | Path, texts: list[str], *, steps: int = 25, lr: float = 1e-2, seed: int = 0
) -> Path:
    """Return DIRECTORY after a few full-batch AdamW steps of its tiny LM on TEXTS (a model that learned something).

    Tiny random LMs sharing a tokenizer pick much the same multiple-choice answers; one tuned on the right answers
    of a few questions answers them differently, as a new checkpoint pushed behind the same name would.
    """
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = LlamaForCausalLM.from_pretrained(directory)
    model.train()
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)  # no loss on padding
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    for _ in range(steps):
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    model.save_pretrained(directory)
    return Path(directory)
