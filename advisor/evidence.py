"""The published results (and this project's own measurements) behind the advisor's rules.

    from advisor.evidence import EVIDENCE, describe
    EVIDENCE["setfit-2022"].numbers        # the numbers, with the setting they were measured in
    EVIDENCE["setfit-2022"].reference      # authors, year, title, venue / arXiv id
    describe(["setfit-2022", "bucher-martini-2024"])   # the text a reason shows

Each rule in advisor.rules cites ids from here; tests/test_evidence.py fails when a cited id
is missing. Entries are summaries in our own words: the claim a rule leans on, the numbers that
support it and where they come from. Caveats that limit a result are part of its numbers.
Data only: no I/O, no imports beyond the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Reference:
    authors: str
    year: int | None
    title: str
    where: str  # venue and/or arXiv id, or where a measurement or a document lives

    def short(self) -> str:
        return f"{self.authors} {self.year}" if self.year else self.authors

    def full(self) -> str:
        year = f" {self.year}" if self.year else ""
        return f"{self.authors}{year}, “{self.title}”, {self.where}"


@dataclass(frozen=True)
class Evidence:
    id: str
    claim: str  # what the source supports, in one sentence
    numbers: str  # the measured numbers and their setting
    reference: Reference
    quantified: bool = True  # False: the source's finding is summarised without figures

    def summary(self) -> str:
        """The numbers and where they come from: what a user reads beside a reason."""
        return f"{self.numbers} ({self.reference.full()})"


def _entry(id: str, claim: str, numbers: str, reference: Reference,
           quantified: bool = True) -> tuple[str, Evidence]:
    return id, Evidence(id, claim, numbers, reference, quantified)


THIS_PROJECT = "measured by this project"

EVIDENCE: dict[str, Evidence] = dict([
    # ------------------------------------------------------------------ prompting vs training
    _entry("vendor-guides",
           "Model providers advise prompting (and retrieval) first, fine-tuning only when an "
           "evaluation shows prompts fall short, and name small minimum training sets.",
           "OpenAI: at least 10 examples, clear gains usually at 50-100, gains roughly linear "
           "per doubling of the data; Gemini: at least 20, 100-500 to change behaviour; Vertex "
           "AI: at least 16, 100-500, supervised tuning on the preferred answers before "
           "preference tuning; Azure OpenAI: hundreds to thousands of examples, prompt "
           "engineering and RAG first; Anthropic: prompt engineering first (no numbers)",
           Reference("OpenAI, Google, Microsoft, Anthropic", None,
                     "fine-tuning and prompt-engineering guides", "vendor documentation")),
    _entry("liu-2022-tfew",
           "Parameter-efficient fine-tuning beats in-context learning from a few dozen examples "
           "per task, at a thousandth of the inference compute.",
           "T-Few (T0 3B with IA3) 72.4% accuracy at 1.1e12 inference FLOPs vs GPT-3 175B "
           "in-context 66.6% at 1.4e15 (>1000x); RAFT benchmark, 50 examples per task: T-Few "
           "75.8, human baseline 73.5, GPT-3 62.7; ~30 min of training on one A100 (~$2)",
           Reference("Liu et al.", 2022, "Few-Shot Parameter-Efficient Fine-Tuning is Better "
                     "and Cheaper than In-Context Learning", "NeurIPS 2022, arXiv:2205.05638")),
    _entry("mosbach-2023",
           "At equal model size, fine-tuning and in-context learning generalise about equally "
           "out of domain, and both vary a lot from run to run.",
           "OPT models from 125M to 30B parameters, 2 to 128 training examples: no consistent "
           "winner between the two; large variance across seeds and example orders, so "
           "comparisons need several seeds",
           Reference("Mosbach et al.", 2023, "Few-shot Fine-tuning vs. In-context Learning: A "
                     "Fair Comparison and Evaluation", "Findings of ACL 2023, arXiv:2305.16938")),
    _entry("kirstain-2021",
           "A few hundred labelled examples are often worth billions of parameters on "
           "closed-output tasks.",
           "Classification, extractive QA and multiple choice: a few hundred training examples "
           "added to a smaller model often matched what scaling the model by billions of "
           "parameters gained; open-ended tasks gained less from examples",
           Reference("Kirstain et al.", 2021, "A Few More Examples May Be Worth Billions of "
                     "Parameters", "Findings of EMNLP 2022, arXiv:2110.04374"), quantified=False),
    # ------------------------------------------------------------------ closed label sets
    _entry("setfit-2022",
           "A sentence encoder fine-tuned contrastively, with a logistic-regression head, "
           "matches or beats much larger fine-tuned models from 8 examples per class, at a "
           "small fraction of the training cost.",
           "Average over the test sets, 10 random training splits, encoder "
           "paraphrase-mpnet-base-v2 (110M): 8 examples per class SetFit 62.3 vs RoBERTa-large "
           "fine-tuning 43.0, ADAPET 58.3, T-Few 3B 63.4; 64 per class SetFit 75.3 vs "
           "RoBERTa-large 69.7, T-Few 3B 70.3; RAFT (50 examples per task) SetFit-MPNet 66.9 vs "
           "GPT-3 in-context 62.7; training ~30 s and $0.025 on a V100 vs ~700 s and $0.70 for "
           "T-Few 3B on an A100 (19x fewer FLOPs); a distilled MiniLM SetFit is 123x cheaper "
           "and scores 60.3",
           Reference("Tunstall et al.", 2022, "Efficient Few-Shot Learning Without Prompts",
                     "arXiv:2209.11055")),
    _entry("bucher-martini-2024",
           "Fine-tuned encoder classifiers clearly beat zero-shot prompting of large generative "
           "models, which can fall below the majority baseline.",
           "Best fine-tuned encoder vs zero-shot GPT-4: sentiment 0.92 vs 0.87, stance 0.94 vs "
           "0.58, emotion 0.89 vs 0.20, multi-class party positions 0.92 vs 0.38 (the majority "
           "baseline there, 0.83, was above every zero-shot model); RoBERTa-large's learning "
           "curve flattens at 200-500 training rows",
           Reference("Bucher & Martini", 2024, "Fine-Tuned 'Small' LLMs (Still) Significantly "
                     "Outperform Zero-Shot Generative AI Models in Text Classification",
                     "arXiv:2406.08660")),
    _entry("pecher-2025",
           "Specialised small models trained on about a hundred labels match or beat "
           "in-context learning of general large models; binary tasks need more labels.",
           "8 text-classification sets, 8 models: break-even at ~100 labelled samples on "
           "average (up to 100 on multi-class sets, up to 5,000 on binary ones); taking "
           "run-to-run variance into account raises these by 100-200%",
           Reference("Pecher, Srba & Bielikova", 2025, "Comparing Specialised Small and General "
                     "Large Language Models on Text Classification: 100 Labelled Samples to "
                     "Achieve Break-Even Performance", "EMNLP 2025, arXiv:2402.12819")),
    _entry("li-flanigan-2023",
           "On classification sets that cannot have leaked into pretraining, zero- and "
           "few-shot prompting rarely beats a majority-class baseline.",
           "Zero/few-shot LLMs on tasks released after their training data: rarely "
           "significantly above the majority baseline, unlike on older, possibly seen sets",
           Reference("Li & Flanigan", 2023, "Task Contamination: Language Models May Not Be "
                     "Few-Shot Anymore", "AAAI 2024, arXiv:2312.16337"), quantified=False),
    _entry("fastfit-2024",
           "Encoder classifiers trained on a handful of examples per class are strong even with "
           "many classes.",
           "Banking77 (77 intents), 5 examples per class, roberta-base: 82.4% accuracy",
           Reference("Yehudai & Bendel", 2024, "When LLMs are Unfit Use FastFit: Fast and "
                     "Effective Text Classification with Many Classes",
                     "NAACL 2024 (demo), arXiv:2404.12365")),
    _entry("measured-banking",
           "On the bundled banking sample, frozen-encoder candidates beat LoRA on a 135M "
           "decoder in a fraction of the time and memory.",
           "216 training rows, 6 intents, quick preset on a 2-core CPU: knn 0.975 and transfer "
           "0.975 (frozen MiniLM, ~15 s, ~0.8 GB) vs LoRA on SmolLM2-135M 0.867 (~2 min to "
           "adapt, 4.6 GB), zero-shot 0.475; no published study compares a 100M-1B decoder "
           "with LoRA against a sentence-encoder classifier at tens to hundreds of examples "
           "per class, so this is measured, not assumed",
           Reference("tunewise", None, "bench/samples/banking_support, `make demo`",
                     THIS_PROJECT)),
    _entry("minilm-context",
           "The default sentence encoder reads at most 256 word pieces; longer inputs are cut.",
           "all-MiniLM-L6-v2 truncates input text beyond 256 word pieces by default "
           "(max_seq_length 256), so the encoder candidates never see the rest of a long row",
           Reference("sentence-transformers", None, "all-MiniLM-L6-v2 model card",
                     "Hugging Face model card")),
    # ------------------------------------------------------------------ knowledge: RAG vs FT
    _entry("ovadia-2023",
           "For knowledge the base model has not seen, retrieval injects it far better than "
           "fine-tuning.",
           "910 multiple-choice questions on events after the training cutoff: Mistral-7B 0.481 "
           "base, 0.875 with RAG, 0.504 fine-tuned, 0.588 fine-tuned on paraphrases, "
           "0.810-0.830 fine-tuned + RAG; Llama-2-7B 0.353 / 0.585 / 0.219; RAG above "
           "fine-tuning on every MMLU subject tested; fine-tuning improves with more "
           "paraphrases per fact (up to 10). Caveat: unsupervised fine-tuning (continued "
           "pre-training) and log-likelihood scoring",
           Reference("Ovadia et al.", 2023, "Fine-Tuning or Retrieval? Comparing Knowledge "
                     "Injection in LLMs", "arXiv:2312.05934")),
    _entry("soudani-2024",
           "For less popular (long-tail) entities, retrieval beats fine-tuning by a wide "
           "margin; fine-tuning helps small models most.",
           "Question answering over entities of varying popularity, twelve models from 80M to "
           "11B: fine-tuning helped at every popularity level but RAG surpassed it, by the "
           "largest margin on the least popular entities",
           Reference("Soudani, Kanoulas & Hasibi", 2024, "Fine Tuning vs. Retrieval Augmented "
                     "Generation for Less Popular Knowledge", "arXiv:2403.01432")),
    _entry("balaguer-2024",
           "In a domain study the gains of fine-tuning and of retrieval added up.",
           "Agriculture question answering: fine-tuning +6 points, retrieval a further +5; "
           "answer similarity on geography-specific questions 47% -> 72%",
           Reference("Balaguer et al.", 2024, "RAG vs Fine-tuning: Pipelines, Tradeoffs, and a "
                     "Case Study on Agriculture", "arXiv:2401.08406")),
    _entry("gekhman-2024",
           "Fine-tuning on facts the model does not know is learned slowly and makes it "
           "hallucinate more.",
           "Closed-book QA fine-tuning: examples with new knowledge were fitted much later than "
           "known ones, and as they were fitted the model's tendency to hallucinate grew",
           Reference("Gekhman et al.", 2024, "Does Fine-Tuning LLMs on New Knowledge Encourage "
                     "Hallucinations?", "EMNLP 2024, arXiv:2405.05904"), quantified=False),
    # ------------------------------------------------------------------ PEFT and memory
    _entry("hu-2021-lora",
           "LoRA matches full fine-tuning while training a tiny fraction of the parameters, "
           "with far smaller checkpoints.",
           "GLUE, RoBERTa-base: 87.24 with 0.8M trained parameters vs 86.40 for full "
           "fine-tuning of 125M; DeBERTa-XXL 91.32 (4.7M) vs 91.06 (1.5B); GPT-2 M on E2E BLEU "
           "70.4 vs 68.2 full; GPT-3 175B MNLI 91.7 vs 89.5; training memory 1.2 TB -> 350 GB "
           "and checkpoints 350 GB -> 35 MB (~10,000x)",
           Reference("Hu et al.", 2021, "LoRA: Low-Rank Adaptation of Large Language Models",
                     "ICLR 2022, arXiv:2106.09685")),
    _entry("hu-2021-low-data",
           "With about a hundred examples LoRA beats full fine-tuning, and prefix methods fall "
           "far behind.",
           "MNLI subsets on GPT-3 175B: 100 examples LoRA 63.8, full 60.2, prefix-layer 48.3, "
           "prefix-embedding 37.6; 1k examples 85.6 vs 85.8 full; 10k 89.2 vs 88.9",
           Reference("Hu et al.", 2021, "LoRA: Low-Rank Adaptation of Large Language Models "
                     "(Table 16)", "ICLR 2022, arXiv:2106.09685")),
    _entry("dettmers-2023-qlora",
           "4-bit NF4 base weights with LoRA adapters fit large models in a fraction of the "
           "memory without losing quality.",
           "65B fine-tuning from >780 GB to <48 GB of GPU memory; 5-shot MMLU mean BF16 53.0, "
           "NF4 with double quantisation 53.1, FP4 52.2; double quantisation cuts the "
           "constants from 0.5 to 0.127 bits per parameter; adapters are needed on every "
           "linear layer to match 16-bit",
           Reference("Dettmers et al.", 2023, "QLoRA: Efficient Finetuning of Quantized LLMs",
                     "NeurIPS 2023, arXiv:2305.14314")),
    _entry("biderman-2024",
           "LoRA learns less than full fine-tuning on hard targets but forgets less of the base "
           "model, and needs far less memory.",
           "Code instruction tuning, HumanEval: LoRA r16 0.358, r64 0.417, r256 0.498 vs full "
           "0.497; continued pre-training never closed the gap (code 0.224 vs 0.263, GSM8K "
           "0.203 vs 0.293); forgetting score LoRA r64 0.509 vs full 0.414 (higher keeps more); "
           "7B model + Adam state 112 GB full vs 15.12 GB LoRA; on an H100 LoRA had ~15% lower "
           "throughput and ~40% lower peak memory at small batch",
           Reference("Biderman et al.", 2024, "LoRA Learns Less and Forgets Less",
                     "TMLR 2024, arXiv:2405.09673")),
    _entry("lora-land-2024",
           "Small 4-bit LoRA fine-tunes of <=7B models beat much larger general models on "
           "narrow tasks, cheaply, and many adapters share one GPU.",
           "310 fine-tunes (10 base models x 31 tasks): on average +34 points over the base "
           "model and +10 over GPT-4; under $8 per fine-tune; 25 adapters served from one "
           "A100-80GB",
           Reference("Zhao et al. (Predibase)", 2024, "LoRA Land: 310 Fine-tuned LLMs that "
                     "Rival GPT-4, A Technical Report", "arXiv:2405.00732")),
    _entry("lester-2021",
           "Prompt tuning reaches full fine-tuning only at about ten billion parameters.",
           "T5 on SuperGLUE: parity with full fine-tuning only at T5-XXL (~11B), well behind at "
           "smaller sizes; ~20K trained parameters per task; more robust under domain shift",
           Reference("Lester, Al-Rfou & Constant", 2021, "The Power of Scale for "
                     "Parameter-Efficient Prompt Tuning", "EMNLP 2021, arXiv:2104.08691")),
    _entry("li-liang-2021",
           "Prefix tuning trains 0.1% of the parameters and is competitive with full data; its "
           "low-data results conflict with LoRA's.",
           "GPT-2 and BART: comparable to full fine-tuning with the full data sets and better "
           "in the authors' low-data settings, whereas LoRA's MNLI-100 comparison had prefix "
           "methods far behind (48.3 vs 63.8)",
           Reference("Li & Liang", 2021, "Prefix-Tuning: Optimizing Continuous Prompts for "
                     "Generation", "ACL 2021, arXiv:2101.00190")),
    _entry("cpu-training-cost",
           "Training a small decoder on a CPU takes seconds per step, so a few hundred steps "
           "take minutes.",
           "SmolLM2-135M, batch 8 x 112 tokens, idle 2-core CPU: 8.46 s per full fine-tuning "
           "step, 8.90 s per LoRA step (benchmarks/train_memory.py, 2026-11-27)",
           Reference("tunewise", None, "benchmarks/train_memory.py", THIS_PROJECT)),
    # ------------------------------------------------------------------ preference tuning
    _entry("rafailov-2023-dpo",
           "DPO matches or beats PPO-based RLHF and is much simpler to run.",
           "TL;DR summarisation, GPT-4-judged win rate ~61% for DPO (temperature 0) vs ~57% "
           "for the best PPO; CNN/DailyMail out of distribution 0.36 vs 0.26",
           Reference("Rafailov et al.", 2023, "Direct Preference Optimization: Your Language "
                     "Model is Secretly a Reward Model", "NeurIPS 2023, arXiv:2305.18290")),
    _entry("ouyang-2022",
           "Supervised tuning then preference tuning lets a small model be preferred over a "
           "much larger one.",
           "1.3B InstructGPT preferred over 175B GPT-3; 175B InstructGPT preferred 85±3% of "
           "the time over GPT-3 and 71±4% over few-shot GPT-3; ~13k demonstrations, 33k "
           "comparisons for the reward model, 31k prompts for RL",
           Reference("Ouyang et al.", 2022, "Training language models to follow instructions "
                     "with human feedback", "NeurIPS 2022, arXiv:2203.02155")),
    # ------------------------------------------------------------------ distance from pretraining
    _entry("gururangan-2020",
           "A broadly pretrained model still gains from further training on text of the target "
           "task's domain: adapting the weights to a domain is not made redundant by a large, "
           "varied pretraining corpus.",
           "RoBERTa (pretrained on over 160 GB of varied English text) further pretrained on "
           "unlabelled text of four domains (biomedical and computer-science papers, news, "
           "reviews), then fine-tuned on eight classification tasks: domain-adaptive "
           "pretraining helped in every domain, with many and with few labels, and further "
           "pretraining on the task's own unlabelled text helped on top; the paper relates the "
           "domains to the pretraining data by vocabulary overlap (of the 10K most frequent "
           "words, stop words left out); per-task figures not confirmed for this entry",
           Reference("Gururangan et al.", 2020, "Don't Stop Pretraining: Adapt Language Models "
                     "to Domains and Tasks", "ACL 2020, arXiv:2004.10964"),
           quantified=False),
    _entry("aharoni-goldberg-2020",
           "The sentence representations of pretrained language models cluster by domain "
           "without supervision, so closeness in such an embedding space is a label-free "
           "measure of how near a text lies to a domain.",
           "Sentences of five domains (topic, style and formality differ) fall into domain "
           "clusters in pretrained models' representations; selecting training data by "
           "similarity to a small in-domain sample beat an established selection method for "
           "machine translation in those domains, by BLEU and by precision and recall against "
           "an oracle selection (figures not confirmed for this entry)",
           Reference("Aharoni & Goldberg", 2020, "Unsupervised Domain Clusters in Pretrained "
                     "Language Models", "ACL 2020, arXiv:2004.02105"),
           quantified=False),
    _entry("measured-domain",
           "How far inputs lie from general text, as the base model and the encoder see them, "
           "differs between real data sets; the cut-offs the advisor applies to it are "
           "assumptions, not findings.",
           "SmolLM2-135M perplexity on 32 train inputs over its perplexity on bundled Wikipedia "
           "passages of the same token length: the self-instruct sample 0.44, hh-rlhf prompts "
           "0.51, the banking sample 0.81, SQuAD passages 1.14, PubMedQA abstracts 1.23, UCI "
           "review sentences 1.82, random character strings 18.7; MiniLM cosine to the passages' "
           "centroid: SQuAD 0.16, the passages' own spread 0.06, the banking sample -0.06, random "
           "characters 0.04, so the encoder measures topic more than fluency. The advisor "
           "calls 1.5x and over far, 1x and under near (with the encoder agreeing): "
           "assumptions, no study gives these cut-offs",
           Reference("tunewise", None, "`tunewise data check PATH --domain` on the bundled "
                     "samples and on PubMedQA and UCI sentiment (--max-rows 200), 2026-12-03",
                     THIS_PROJECT)),
    # ------------------------------------------------------------------ measuring, not guessing
    _entry("jamieson-2016",
           "Giving every candidate a small budget and only the better ones more finds the best "
           "at a fraction of the cost of running all of them to the end.",
           "Successive halving: all candidates start on a small budget, the better 1/eta are "
           "kept at each rung and their budget multiplied by eta (2 in the paper's "
           "description; Hyperband's default is 3), until one remains",
           Reference("Jamieson & Talwalkar", 2016, "Non-stochastic Best Arm Identification and "
                     "Hyperparameter Optimization", "AISTATS 2016, arXiv:1502.07943"),
           quantified=False),
    _entry("li-2017-hyperband",
           "Successive halving run at several starting budgets is robust to not knowing how "
           "small a budget still ranks candidates correctly.",
           "Hyperband: brackets of successive halving with different starting budgets; large "
           "speed-ups over random search and Bayesian optimisation on model-selection "
           "benchmarks",
           Reference("Li et al.", 2017, "Hyperband: A Novel Bandit-Based Approach to "
                     "Hyperparameter Optimization", "JMLR 2018, arXiv:1603.06560"),
           quantified=False),
])


class UnknownEvidence(KeyError):
    """A rule cites an evidence id that is not in EVIDENCE."""


def lookup(ids: Iterable[str]) -> list[Evidence]:
    ids = list(ids)
    missing = [i for i in ids if i not in EVIDENCE]
    if missing:
        raise UnknownEvidence(f"unknown evidence id(s) {', '.join(missing)}; known: "
                              f"{', '.join(sorted(EVIDENCE))}")
    return [EVIDENCE[i] for i in ids]


def describe(ids: Iterable[str]) -> str:
    """The numbers and references of these entries, as one text (what a reason shows)."""
    return "; ".join(e.summary() for e in lookup(ids))
