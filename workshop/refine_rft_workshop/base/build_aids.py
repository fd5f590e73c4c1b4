"""Training aids of the instruct-base build: option-line tokens, a vision probe and attention hints.

A small model trained from random weights on a 2-core CPU does not find, within its budget, the
two skills every multiple-choice answer needs (``benchmarks/instruct_base.md``): seeing which
species is in the image, and finding that species among the options to copy its letter. The
model stays a plain Qwen2-VL; these aids only shape what its training sees and what it is
pushed towards, and none of them is used after the build:

- **Catalogue tokens** (:func:`add_catalogue_tokens`). Each option line of the fixed species
  catalogue (``"B. Crested Finch"``) and each name (``" Crested Finch"``) is one token. A line
  token starts as its letter's embedding plus its species' vector, so all ``"B. …"`` lines share
  the letter part and all lines of a species share the species part: the answer can then be read
  in one attention hop (match the species, take the letter from the same token).
- **Vision probe** (:class:`VisionProbe`). Linear heads on the mean of each image's tokens
  predict the species and its six attributes: a direct signal for the vision tower, which
  otherwise learns only through the language model.
- **Option hints** (:class:`OptionHints`). At Choice, Both and CoT answers, the answer circuit
  is supervised piece by piece: attention from each option line to the image, a probe for the
  correct line, one last-layer head per option line.

>>> catalogue_token_texts(["Common Finch"])
['A. Common Finch', 'B. Common Finch', 'C. Common Finch', 'D. Common Finch', ' Common Finch']
"""

from __future__ import annotations

from refine_rft_workshop.synthetic import ATTRIBUTES
from refine_rft.prompts import LETTERS, answer_text

OPTION_LETTERS = LETTERS[:4]


def catalogue_token_texts(names: list[str]) -> list[str]:
    """The texts that become single tokens: every option line ``"<letter>. <name>"`` and every
    name with its leading space (as it follows "is a" or "match")."""
    # The line as the question writes it (``answer_text`` is the option-line format of the prompts).
    lines = [answer_text([name], 0, letter) for letter in OPTION_LETTERS for name in names]
    return lines + [" " + name for name in names]


def add_catalogue_tokens(model, tokenizer, names: list[str], seed: int = 0) -> int:
    """Add :func:`catalogue_token_texts` to ``tokenizer`` (those it lacks) and grow ``model``'s
    embeddings to match, new rows factorised (line = letter embedding + species vector, name =
    species vector); return how many rows were added. Calling it again changes nothing.
    """
    import torch
    from tokenizers import AddedToken

    texts = catalogue_token_texts(names)
    tokenizer.add_tokens([AddedToken(text, normalized=False) for text in texts])
    old_rows = model.get_input_embeddings().weight.shape[0]
    if old_rows >= len(tokenizer):
        return 0
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    embeddings = model.get_input_embeddings().weight
    generator = torch.Generator().manual_seed(seed)
    scale = embeddings[:old_rows].std().item()
    species = {name: torch.randn(embeddings.shape[1], generator=generator) * scale for name in names}
    with torch.no_grad():
        for text in texts:
            token = tokenizer.convert_tokens_to_ids(text)
            if token < old_rows:
                continue
            if text.startswith(" "):
                embeddings[token] = species[text[1:]]
            else:
                letter, name = text.split(". ", 1)
                embeddings[token] = embeddings[tokenizer.convert_tokens_to_ids(letter)] + species[name]
    return len(tokenizer) - old_rows


class VisionProbe:
    """Linear heads on an image's mean token: its species and each attribute's value.

    It hooks the model's vision tower (:meth:`detach` removes the hook); ``loss(rows)`` is the
    mean cross-entropy over the images of the last forward pass, whose rows are given in order.
    Discarded after the build.
    """

    def __init__(self, model, names: list[str]):
        import torch

        hidden = model.config.text_config.hidden_size
        self.names = names
        self.heads = torch.nn.ModuleDict({"species": torch.nn.Linear(hidden, len(names)),
                                          **{a: torch.nn.Linear(hidden, len(v)) for a, v in ATTRIBUTES.items()}})
        self.hidden = hidden
        self._features = None
        self._hook = model.model.visual.register_forward_hook(self._capture)

    def _capture(self, module, inputs, output):
        # The merged image tokens of every image in the batch, before the model splits them.
        self._features = output.pooler_output

    def parameters(self):
        return self.heads.parameters()

    def detach(self) -> None:
        """Stop capturing the vision tower's output (the model is then as it was)."""
        self._hook.remove()

    def loss(self, rows: list[dict]):
        import torch

        features = self._features.reshape(len(rows), -1, self.hidden).mean(1)
        self._features = None
        targets = {"species": [self.names.index(r["label"]) for r in rows]}
        targets.update({a: [values.index(r["attributes"][a]) for r in rows] for a, values in ATTRIBUTES.items()})
        species = torch.nn.functional.cross_entropy(self.heads["species"](features), torch.tensor(targets["species"]))
        attributes = sum(torch.nn.functional.cross_entropy(self.heads[a](features), torch.tensor(targets[a]))
                         for a in ATTRIBUTES) / len(ATTRIBUTES)
        return species + attributes


def answer_positions(input_ids, assistant_mask, answer_tokens):
    """Per sequence, the position whose logits predict the answer: the one before the last
    assistant token in ``answer_tokens`` (a letter, or an option line), so that a CoT answer is
    found after its reasoning; the one before the first assistant token where there is none
    (``assistant_mask`` is unshifted).

    >>> import torch
    >>> ids = torch.tensor([[5, 6, 1, 7, 2, 9], [5, 6, 2, 8, 8, 9]])
    >>> mask = torch.tensor([[0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]])
    >>> answer_positions(ids, mask, torch.tensor([False, True, True] + [False] * 7)).tolist()
    [3, 1]
    """
    import torch

    is_answer = answer_tokens[input_ids] & assistant_mask.bool()
    last = torch.arange(input_ids.shape[1]).expand_as(input_ids).masked_fill(~is_answer, -1).max(1).values
    first = assistant_mask.float().argmax(1)
    return torch.where(last >= 0, last, first) - 1


class OptionHints:
    """The answer circuit of a multiple-choice question, hinted piece by piece.

    Each piece is an easy, directly supervised step, where the whole look-up learnt from the
    answer alone stays at chance (``benchmarks/instruct_base.md``):

    1. at each option line and at the answer position, head 0 of layer 1 looks at the image
       (it brings the image's species to the line);
    2. a linear probe reads, from the input of the last layer at each option line, whether this
       line is the correct option (the line compares its own species with the image's);
    3. at the answer position, head ``k`` of the last layer looks at the ``k``-th option line
       (so the letter's logit can read line ``k``'s flag through head ``k`` alone).

    The answer position is the one before the answer's letter or option line
    (:func:`answer_positions`): the first assistant token for Choice and Both, the ``<answer>``
    line after the reasoning for CoT.

    ``loss(output, input_ids, assistant_mask, correct_lines)`` needs a forward pass with
    ``output_attentions`` and ``output_hidden_states``. Discarded after the build.
    """

    def __init__(self, model, line_tokens: list[int], letter_tokens: list[int], image_token: int,
                 options: int = 4):
        import torch

        self.flag = torch.nn.Linear(model.config.text_config.hidden_size, 1)
        self.is_line = torch.zeros(model.get_input_embeddings().weight.shape[0], dtype=torch.bool)
        self.is_line[line_tokens] = True
        self.is_answer = self.is_line.clone()
        self.is_answer[letter_tokens] = True
        self.image_token, self.options = image_token, options
        self.heads = min(options, model.config.text_config.num_attention_heads)

    def parameters(self):
        return self.flag.parameters()

    def loss(self, output, input_ids, assistant_mask, correct_lines: list[int]) -> dict:
        """``{"pool", "flag", "heads"}``: the three hint losses (mean negative log attention mass,
        the probe's binary cross-entropy), and ``flag_accuracy``: how often the probe's highest
        line is the correct one."""
        import torch

        batch = torch.arange(input_ids.shape[0])
        positions = answer_positions(input_ids, assistant_mask, self.is_answer)
        # The option lines of the question, not an answer line the target writes.
        in_prompt = assistant_mask.cumsum(1) == 0
        is_line = self.is_line[input_ids] & in_prompt
        if (is_line.sum(1) != self.options).any():
            raise ValueError(f"hinted examples need {self.options} option lines of catalogue tokens each")
        correct = is_line & (input_ids == torch.tensor(correct_lines).unsqueeze(1))
        on_image = (input_ids == self.image_token).float()

        queries = is_line.clone()
        queries[batch, positions] = True
        image_mass = (output.attentions[1][:, 0] * on_image.unsqueeze(1)).sum(2)
        pool = -(torch.log(image_mass + 1e-6) * queries).sum() / queries.sum()

        flag_logits = self.flag(output.hidden_states[-2]).squeeze(-1)
        flag = torch.nn.functional.binary_cross_entropy_with_logits(flag_logits[is_line],
                                                                    correct[is_line].float())
        best = torch.where(is_line, flag_logits, torch.full_like(flag_logits, -1e9)).argmax(1)

        line_positions = is_line.nonzero()[:, 1].reshape(-1, self.options)  # in order: A, B, C, D
        last = output.attentions[-1]
        heads = -torch.stack([torch.log(last[batch, k, positions, line_positions[:, k]] + 1e-6)
                              for k in range(self.heads)]).mean()
        return {"pool": pool, "flag": flag, "heads": heads,
                "flag_accuracy": correct[batch, best].float().mean().item()}
