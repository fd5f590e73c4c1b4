"""Why the tiny instruct base never learns the letter look-up: the same circuit in a text-only toy.

A Choice answer needs the *letter look-up*: find the option that names the species, answer the
letter written two tokens before that name ("B. <name>"). This script trains a small Qwen2 text
model from scratch on that skill alone, next to two skills it is made of, and prints the loss on
the answer token every 100 steps:

- ``lookup``: four options ``L . <name> \\n`` then queries ``? <name> = L``; chance is ln 4 = 1.386;
- ``repeat``: 16 random tokens repeated; the loss on the repeat (classic induction);
- ``back2``: answer the token two before the ``=`` (a fixed-offset copy);
- ``lines``: the look-up with one token per option line (letter and name in one token, as a
  tokenizer with a token per ``"\\nB. <species>"`` of a fixed catalogue would give): one hop.

    python benchmarks/lookup_plateau.py --task lookup --steps 4000

Measured on a shared 2-core CPU (hidden 128, 2 layers, 4 heads, lr 1e-3, batch 32, 8 queries per
sequence): ``back2`` falls to 0.03 by step 100 and ``repeat`` to 0.05, but ``lookup`` is still at
chance (1.384) after 4,000 steps; with hidden 256, 4 layers and Qwen2-VL's rope theta of 1e6 it is
at chance after 400 steps too. With 4 queries per sequence, ``lines`` leaves chance after about
1,000 steps (1.40 at step 900, 1.13 at 1,200, 1.04 at 1,500) where ``lookup`` is still at 1.36 at
step 1,500 (``--queries 4 --steps 1500``; with 8 queries ``lines`` was still at chance at step 700).
So the look-up is an optimisation plateau of the two-hop circuit
(copy the letter forward onto its name, then match the name), not a bug of the build: a build
must either give it far more steps or make it one hop (see ``benchmarks/instruct_base.md``).
"""

from __future__ import annotations

import argparse
import random
import time

import torch

LETTERS, NAMES, DOT, NEWLINE, QUERY, EQUALS = [1, 2, 3, 4], list(range(10, 34)), 5, 6, 7, 8
VOCAB = 200  # room for the 4 x 24 option-line tokens of ``lines`` (100 + 4 * name + letter)


def lookup_batch(size: int, queries: int, lines: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequences and the positions whose next token is a looked-up letter (``lines``: each option
    line is one token)."""
    sequences, positions = [], []
    for _ in range(size):
        names = random.sample(NAMES, 4)
        if lines:
            sequence = [t for slot, name in enumerate(names) for t in (100 + 4 * (name - 10) + slot, NEWLINE)]
        else:
            sequence = [t for letter, name in zip(LETTERS, names) for t in (letter, DOT, name, NEWLINE)]
        where = []
        for _ in range(queries):
            k = random.randrange(4)
            sequence += [QUERY, names[k], EQUALS, LETTERS[k]]
            where.append(len(sequence) - 2)
        sequences.append(sequence)
        positions.append(where)
    return torch.tensor(sequences), torch.tensor(positions)


def loss_of(model, task: str, size: int, queries: int) -> torch.Tensor:
    cross_entropy = torch.nn.functional.cross_entropy
    if task == "repeat":
        half = torch.randint(10, 60, (size, 16))
        sequence = torch.cat([half, half], 1)
        logits = model(input_ids=sequence).logits
        return cross_entropy(logits[:, 16:-1].reshape(-1, VOCAB), sequence[:, 17:].reshape(-1))
    sequence, where = lookup_batch(size, queries, lines=task == "lines")
    logits = model(input_ids=sequence).logits
    picked = torch.gather(logits, 1, where[:, :, None].expand(-1, -1, VOCAB))
    target = torch.gather(sequence, 1, where - 1 if task == "back2" else where + 1)
    return cross_entropy(picked.reshape(-1, VOCAB), target.reshape(-1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("lookup", "lines", "repeat", "back2"), default="lookup")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--rope-theta", type=float, default=10000.0)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--queries", type=int, default=8)
    args = parser.parse_args()

    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    random.seed(0)
    config = Qwen2Config(vocab_size=VOCAB, hidden_size=args.hidden, intermediate_size=2 * args.hidden,
                         num_hidden_layers=args.layers, num_attention_heads=4, num_key_value_heads=4,
                         max_position_embeddings=256, rope_theta=args.rope_theta)
    model = Qwen2ForCausalLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    start = time.perf_counter()
    for step in range(args.steps + 1):
        loss = loss_of(model, args.task, 32, args.queries)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0:
            print(f"{args.task} step {step:5d}  loss {loss.item():.3f}  ({time.perf_counter() - start:.0f} s)",
                  flush=True)


if __name__ == "__main__":
    main()
