"""bench.domain: the base model's perplexity and the encoder's similarity, each beside the same
measure on the bundled general reference; `tunewise data check --domain`; the advisor computing
it. Tiny random models for the plumbing; one integration test on the real bundled models for
the direction (banking queries vs random character strings)."""

from __future__ import annotations

import json
import math
import random
import string
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from advisor.cli import main
from bench import domain
from bench.domain import (centroid_similarities, input_text, load_reference, measure_domain,
                          measure_texts, perplexity, sample_inputs)
from tests.conftest import SAMPLES, tiny_split

ROOT = Path(__file__).resolve().parent.parent
RECORD_KEYS = {"model", "perplexity", "reference_perplexity", "perplexity_ratio", "encoder",
               "similarity_to_reference", "reference_self_similarity", "reference_tokens",
               "rows", "seconds"}


def alien_texts(n=32, seed=0) -> list[str]:
    """Random letters and spaces: a distribution no pretraining corpus holds."""
    rng = random.Random(seed)
    return ["".join(rng.choice(string.ascii_letters + " ") for _ in range(rng.randint(40, 80)))
            for _ in range(n)]


def test_the_reference_ships_with_its_licence():
    passages = load_reference()
    assert len(passages) == 32 and all(len(p.split()) > 40 for p in passages)
    source = (ROOT / "bench" / "reference" / "SOURCE.txt").read_text()
    assert "CC BY-SA 4.0" in source and "Rajpurkar" in source
    assert '"reference/*"' in (ROOT / "pyproject.toml").read_text()
    # none of the bundled squad_mini passages: that sample is not measured against itself
    bundled = {json.loads(line)["text"] for line in
               (SAMPLES / "squad_mini" / "corpus.jsonl").read_text().splitlines()}
    assert not bundled & set(passages)


def test_input_text_is_what_the_model_reads_per_task():
    assert input_text({"text": "card lost", "label": "x"}, "classification") == "card lost"
    assert input_text({"instruction": "Sum.", "input": "1 2", "output": "3"},
                      "generation") == "Sum.\n1 2"
    assert input_text({"instruction": "Hi.", "input": "", "output": "x"}, "generation") == "Hi."
    assert input_text({"question": "Q?", "context": "C.", "answer": "a"}, "qa") == "C.\nQ?"
    assert input_text({"prompt": "", "chosen": "yes", "rejected": "no"}, "preference") == "yes"


def test_the_sample_is_seeded_and_capped():
    split = tiny_split("classification")
    assert sample_inputs(split, rows=3, seed=1) == sample_inputs(split, rows=3, seed=1)
    assert len(sample_inputs(split, rows=3)) == 3
    assert sorted(sample_inputs(split, rows=100)) == sorted(r["text"] for r in split.train)


def test_centroid_similarities_by_hand():
    reference = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    near = np.array([[1.0, 0.0]])
    far = np.array([[-1.0, 0.0]])
    to_near, spread = centroid_similarities(near, reference)
    to_far, _ = centroid_similarities(far, reference)
    # centroid (2, 1)/sqrt(5): cosine of (1, 0) is 2/sqrt(5), of (-1, 0) its negative
    assert to_near == pytest.approx(2 / math.sqrt(5)) and to_far == pytest.approx(-to_near)
    # leave-one-out: (1,0) vs (1,1)/sqrt2 -> 0.707 twice, (0,1) vs (1,0) -> 0
    assert spread == pytest.approx((2 * 2 ** -0.5) / 3)


@pytest.fixture(scope="module")
def tiny_llama():
    from bench.models import load_model

    return load_model("tiny-llama", "causal-lm")


def test_padding_does_not_change_the_perplexity(tiny_llama):
    model, tokenizer = tiny_llama
    side = tokenizer.padding_side
    texts = ["a short one", "a much longer sentence with many more words in it than the first",
             "middle length text here"]
    one_by_one = perplexity(model, tokenizer, texts, max_tokens=64, batch_size=1)
    batched = perplexity(model, tokenizer, texts, max_tokens=64, batch_size=3)
    assert batched == pytest.approx(one_by_one, rel=1e-4)
    assert tokenizer.padding_side == side  # measured right-padded, then restored


def test_measure_texts_on_tiny_models_returns_the_record():
    record = measure_texts(["I lost my card yesterday", "how do I top up?"] * 3, "tiny-llama",
                           "tiny-bert")
    assert set(record) == RECORD_KEYS
    assert record["model"] == "tiny-llama" and record["encoder"] == "tiny-bert"
    assert record["rows"] == 6
    for key in ("perplexity", "reference_perplexity", "perplexity_ratio",
                "similarity_to_reference", "reference_self_similarity", "seconds"):
        assert math.isfinite(record[key]), key
    assert record["perplexity"] > 1 and record["reference_perplexity"] > 1
    assert record["perplexity_ratio"] == pytest.approx(
        record["perplexity"] / record["reference_perplexity"], rel=0.01)
    assert -1 <= record["similarity_to_reference"] <= 1
    # the reference is cut to the inputs' median length, not measured at 128 tokens
    assert domain.MIN_TOKENS <= record["reference_tokens"] < 20


def test_measure_domain_samples_the_train_split():
    record = measure_domain(tiny_split("qa"), "tiny-llama", "tiny-bert", rows=1)
    assert record["rows"] == 1 and set(record) == RECORD_KEYS


def test_no_text_is_a_clear_error():
    from bench.errors import TunewiseError

    with pytest.raises(TunewiseError, match="no input text"):
        measure_texts(["", "  "], "tiny-llama", "tiny-bert")


# --------------------------------------------------------------------------- the CLI


def test_data_check_domain_json_and_table(capsys):
    path = str(SAMPLES / "banking_support")
    assert main(["data", "check", path, "--domain", "--model", "tiny-llama", "--encoder",
                 "tiny-bert", "--json"]) == 0
    profile = json.loads(capsys.readouterr().out)
    assert set(profile["domain"]) == RECORD_KEYS and profile["domain"]["rows"] == 32
    assert main(["data", "check", path, "--domain", "--model", "tiny-llama", "--encoder",
                 "tiny-bert"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Domain: 32 train inputs vs general text" in out
    assert "tiny-llama" in out and "tiny-bert" in out and "ratio" in out


def test_data_check_domain_with_an_unknown_model_is_a_message(capsys):
    assert main(["data", "check", str(SAMPLES / "banking_support"), "--domain", "--model",
                 str(ROOT / "no-such-model")]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_the_plain_data_check_stays_torch_free():
    code = ("import sys; from advisor.cli import main; "
            f"main(['data', 'check', {str(SAMPLES / 'banking_support')!r}, '--json']); "
            "print('bench.domain' in sys.modules, 'torch' in sys.modules, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "domain" not in json.loads(done.stdout)
    assert done.stderr.strip().splitlines()[-1] == "False False"


# --------------------------------------------------------------------------- the advisor


def test_recommend_measures_the_domain_and_the_rule_reads_it():
    from advisor.answers import validate_answers
    from advisor.recommend import recommend

    answers = validate_answers({"task": "classification", "model": {"base": "tiny-llama"},
                                "data": {"path": str(SAMPLES / "banking_support")}})
    result = recommend(answers, measure=False, domain=True, encoder="tiny-bert",
                       hardware={"cuda": False, "memory_gb": 64.0, "cores": 2})
    record = result.profile["domain"]
    assert record["model"] == "tiny-llama" and record["encoder"] == "tiny-bert"
    assert result.facts.domain_perplexity_ratio == record["perplexity_ratio"]
    assert record["perplexity_ratio"] > 0 and record["rows"] == 32
    off = recommend(answers, measure=False, encoder="tiny-bert",
                    hardware={"cuda": False, "memory_gb": 64.0, "cores": 2})
    assert "domain" not in off.profile and off.facts.domain_perplexity_ratio is None


def test_a_domain_that_cannot_be_measured_is_a_note_not_a_failure():
    from advisor.answers import validate_answers
    from advisor.recommend import recommend

    answers = validate_answers({"task": "classification", "model": {"base": "tiny-llama"},
                                "data": {"path": str(SAMPLES / "banking_support")}})
    result = recommend(answers, measure=False, domain=True, encoder="no-such-encoder",
                       hardware={"cuda": False, "memory_gb": 64.0, "cores": 2})
    assert "domain" not in result.profile
    assert any("domain was not measured" in note for note in result.notes)


def test_a_hub_model_is_measured_with_the_default_one():
    from advisor.recommend import DEFAULT_MODEL, domain_model_for

    notes: list[str] = []
    assert domain_model_for("meta-llama/Llama-2-7b-hf", notes) == DEFAULT_MODEL
    assert "not meta-llama/Llama-2-7b-hf" in notes[0]
    assert domain_model_for("tiny-llama", []) == "tiny-llama"
    assert domain_model_for(None, []) == DEFAULT_MODEL


def test_advise_measures_unless_no_domain(capsys, monkeypatch):
    far = {"model": "m", "perplexity": 300.0, "reference_perplexity": 30.0,
           "perplexity_ratio": 10.0, "encoder": "e", "similarity_to_reference": -0.1,
           "reference_self_similarity": 0.06, "reference_tokens": 12, "rows": 32,
           "seconds": 0.1}
    calls = []
    monkeypatch.setattr(domain, "measure_domain",
                        lambda split, model, encoder, **kw: calls.append(model) or dict(far))
    answers = str(ROOT / "advisor" / "samples" / "classification.yaml")

    def rules_fired(*extra):
        assert main(["advise", "--answers", answers, "--json", "--no-measure", "--no-probe",
                     *extra]) == 0
        ranked = json.loads(capsys.readouterr().out)["ranked"]
        return {r["rule"] for item in ranked for r in item["reasons"]}

    assert "measured-domain" in rules_fired() and calls == ["smollm2-135m"]
    assert "measured-domain" not in rules_fired("--no-domain") and len(calls) == 1


# --------------------------------------------------------------------------- the report


def test_the_report_shows_the_domain_in_the_data_section():
    from reports.html import _profile

    manifest = {"profile": {"task": "classification", "rows": 300, "domain": {
        "model": "smollm2-135m", "perplexity": 105.4, "reference_perplexity": 129.9,
        "perplexity_ratio": 0.811, "encoder": "minilm-l6", "similarity_to_reference": -0.058,
        "reference_self_similarity": 0.062, "rows": 32}}}
    facts = dict(_profile(manifest)["facts"])
    assert "0.811x (smollm2-135m)" in facts["domain: perplexity"]
    assert "-0.058" in facts["domain: similarity"] and "minilm-l6" in facts["domain: similarity"]
    assert "domain" not in facts  # not also dumped raw
    plain = dict(_profile({"profile": {"rows": 3}})["facts"])
    assert not any(key.startswith("domain") for key in plain)


# --------------------------------------------------------------------------- real models


@pytest.mark.integration
def test_banking_queries_are_nearer_general_text_than_random_characters(capsys):
    """The bundled models: random character strings have a far higher perplexity ratio than the
    banking sample; the encoder puts Wikipedia-like passages (squad_mini) nearer the general
    centroid than random characters."""
    from bench.data import load_task_data

    banking = measure_domain(load_task_data(SAMPLES / "banking_support").split)
    squad = measure_domain(load_task_data(SAMPLES / "squad_mini").split)
    alien = measure_texts(alien_texts())
    with capsys.disabled():
        for name, record in (("banking", banking), ("squad", squad), ("alien", alien)):
            print(f"\n{name}: {record}")
    assert alien["perplexity_ratio"] > 3 * banking["perplexity_ratio"]
    assert alien["perplexity_ratio"] > 3 * squad["perplexity_ratio"]
    assert squad["similarity_to_reference"] > alien["similarity_to_reference"]
    assert squad["similarity_to_reference"] > squad["reference_self_similarity"]


def test_the_advise_table_names_the_perplexity_ratio():
    from advisor.advise_cli import data_line
    from advisor.rules import Facts

    assert "perplexity 1.80x general text" in data_line(Facts(domain_perplexity_ratio=1.8))
    assert "perplexity" not in data_line(Facts())
