#!/usr/bin/env python
"""How long Chromium takes to show a 50 kB proof with 300 formulas (issue 3; goal <= 300 ms).

Seeds a small scratch database (`proofdesk_bench_render`) with one campaign holding one
such proof, serves the app with daphne exactly as `grading_load.py` does (DEBUG off, loopback,
the same Server-Timing wrapper), logs a grader in with Debian's Chromium through Playwright,
claims the proof and then loads its grading page `--loads` times. For each load an init
script records, on the page's own clock (`performance.now()`, zero at navigation start):

- `math_ms`: when `static/js/math.js` marks `<html data-math="visible">`: the formulas on
  screen and one screen either side are typeset (the others are typeset as they come near
  the viewport, or in slices while the browser is idle). At that moment the script itself
  counts the formulas inside the viewport that are still raw TeX (`visible_raw`, must be 0);
- `render_ms`: the first frame painted after that at which the fonts have loaded, i.e. what
  the grader sees is fully rendered (visually complete); this is the figure compared with
  the goal;
- `all_ms`: when every one of the proof's formulas is typeset (`data-math="all"`), the
  whole proof ready for scrolling, printing or searching.

The first load runs with a cold browser cache; the reported `render_50kb_ms` is the median
of the warm loads (a grader moving from proof to proof), the cold one is reported next to it.

    .venv/bin/python bench/render_bench.py [--quick] [--loads 9]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import grading_load as gl  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip

SEED_CODE = r"""
import json, os
from django.contrib.auth import get_user_model
from annotate.models import Campaign, CampaignItem, Membership, Problem, Proof, Role
from annotate.rendering import render_markdown
spec = json.load(open(os.environ["RENDER_BENCH_SPEC"]))
User = get_user_model()
grader = User.objects.create_user("render_grader", password=spec["password"])
problem = Problem.objects.create(
    external_id="RENDER-1", statement=spec["statement"], reference_solution=spec["reference"],
    guidelines="**Partial:** the key lemma.", category="algebra",
)
proof = Proof.objects.create(problem=problem, text=spec["text"], generator_model="deepseek-math-v2")
campaign = Campaign.objects.create(name="Render bench", overlap=1, blind=True)
CampaignItem.objects.create(campaign=campaign, proof=proof)
Membership.objects.create(campaign=campaign, user=grader, role=Role.GRADER)
formulas = render_markdown(proof.text).count('class="math')
print(json.dumps({"campaign": campaign.pk, "formulas": formulas}))
"""

# Runs before any page script: polls each animation frame until the proof's formulas are all
# typeset, then waits for the fonts and one more frame.
INIT_SCRIPT = """
(() => {
  const pd = (window.__pd = { handlers: {} });
  // Where the time goes: time each script's DOMContentLoaded handler (math.js typesets
  // there, grading.js sets the page up there), labelled by the script that added it.
  const add = EventTarget.prototype.addEventListener;
  EventTarget.prototype.addEventListener = function (type, fn, options) {
    if (this === document && type === "DOMContentLoaded" && typeof fn === "function") {
      const script = document.currentScript;
      const label = script && script.src ? script.src.split("/").pop() : "inline";
      const timed = function (event) {
        const start = performance.now();
        try {
          return fn.call(this, event);
        } finally {
          pd.handlers[label] = (pd.handlers[label] || 0) + performance.now() - start;
        }
      };
      return add.call(this, type, timed, options);
    }
    return add.call(this, type, fn, options);
  };
  const proof = () => document.getElementById("proof-text");
  // On screen: the part of the proof inside the viewport (what the grader sees).
  function onScreen(el) {
    const r = el.getBoundingClientRect();
    return (r.width > 0 || r.height > 0) && r.bottom > 0 && r.top < window.innerHeight;
  }
  function count() {
    const root = proof();
    const all = root ? Array.from(root.querySelectorAll(".math")) : [];
    pd.total = all.length;
    pd.done = all.filter((el) => el.querySelector(".katex")).length;
    const visible = all.filter(onScreen);
    pd.visible = visible.length;
    pd.visibleRaw = visible.filter((el) => !el.querySelector(".katex")).length;
  }
  // Checked after each batch of DOM changes (a microtask after the script that changed the
  // DOM): math.js marks <html data-math="visible"> when the formulas on and near the screen
  // are typeset, "all" when every one is. The check of what is really on screen is this
  // script's own, not math.js's word.
  const observer = new MutationObserver(() => {
    const state = document.documentElement.getAttribute("data-math");
    if (pd.math === undefined && (state === "visible" || state === "all")) {
      pd.math = performance.now();
      count();
      pd.visibleRawAtRender = pd.visibleRaw;
      afterPaint();
    }
    if (pd.all === undefined && state === "all") {
      pd.all = performance.now();
      observer.disconnect();
      count();
    }
  });
  document.addEventListener("readystatechange", () => {
    if (document.readyState === "interactive" && pd.math === undefined) {
      observer.observe(document.documentElement, {
        attributes: true, attributeFilter: ["data-math"], childList: true, subtree: true,
      });
    }
  });
  // Fully rendered: the first frame painted after the formulas on screen are typeset and
  // the fonts they use have loaded (a task queued from requestAnimationFrame runs after that
  // paint).
  // count() measured positions, so the page is laid out and the fonts it needs are requested.
  function afterPaint() {
    document.fonts.ready.then(() => requestAnimationFrame(() => setTimeout(() => {
      pd.render = performance.now();
    }, 0)));
  }
})();
"""

COLLECT = """
() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const st = (nav.serverTiming || []).find((t) => t.name === "app");
  return {
    math_ms: window.__pd.math, render_ms: window.__pd.render, formulas: window.__pd.total,
    all_ms: window.__pd.all, katex: window.__pd.done, visible: window.__pd.visible,
    visible_raw: window.__pd.visibleRawAtRender,
    ttfb_ms: nav.responseStart, response_end_ms: nav.responseEnd,
    dom_content_loaded_ms: nav.domContentLoadedEventEnd, load_ms: nav.loadEventEnd,
    server_ms: st ? st.duration : null, html_bytes: nav.transferSize,
    fcp_ms: (performance.getEntriesByName("first-contentful-paint")[0] || {}).startTime,
    math_js_ms: window.__pd.handlers["math.js"],
  };
}
"""


def js_profile(context, page, url: str) -> list[tuple[str, float]]:
    """Self time per script file (or V8 pseudo-node) during one load, largest first."""
    cdp = context.new_cdp_session(page)
    cdp.send("Profiler.enable")
    cdp.send("Profiler.setSamplingInterval", {"interval": 200})
    cdp.send("Profiler.start")
    page.goto(url, wait_until="load")
    page.wait_for_function("() => window.__pd && window.__pd.render", timeout=30_000)
    profile = cdp.send("Profiler.stop")["profile"]
    names = {}
    for node in profile["nodes"]:
        frame = node["callFrame"]
        names[node["id"]] = frame["url"].rsplit("/", 1)[-1] or frame["functionName"] or "?"
    spent: dict[str, float] = {}
    for node_id, delta in zip(profile["samples"], profile["timeDeltas"], strict=True):
        spent[names[node_id]] = spent.get(names[node_id], 0.0) + delta / 1000
    return sorted(((k, v) for k, v in spent.items() if k != "(idle)"), key=lambda kv: -kv[1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 loads instead of 9 (a smoke test)")
    ap.add_argument("--loads", type=int, default=9, help="page loads (the first is cold)")
    ap.add_argument("--chars", type=int, default=50_000)
    ap.add_argument("--formulas", type=int, default=300)
    ap.add_argument("--pg-url", default=os.environ.get(
        "BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))  # fmt: skip
    ap.add_argument("--db", default="proofdesk_bench_render")
    ap.add_argument("--keep-db", action="store_true")
    ap.add_argument("--css", default="", help="what-if: extra CSS injected into the page")
    ap.add_argument(
        "--at-proof",
        action="store_true",
        help="open the page scrolled to the proof (#proof-text): a screen full of formulas",
    )
    ap.add_argument(
        "--page",
        choices=("grading", "item"),
        default="grading",
        help="the grading page (default) or the read-only item page, for comparison",
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.loads = min(args.loads, 3)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    r = random.Random(gl.SEED)
    text = gl.proof_with_formulas(r, args.chars, args.formulas)
    workdir = Path(tempfile.mkdtemp(prefix="proofdesk-render-"))
    secret = workdir / "secret_key"
    secret.write_text(uuid.uuid4().hex + uuid.uuid4().hex)
    secret.chmod(0o600)
    db_url = gl.pg_url(args.pg_url, args.db)
    env = gl.server_env(db_url, secret)
    try:
        gl.recreate_database(args.pg_url, args.db)
        gl.migrate(env)
        spec = workdir / "spec.json"
        spec.write_text(json.dumps({
            "password": gl.PASSWORD, "text": text,
            "statement": "Let " + gl._inline(r) + ". Prove that " + gl._inline(r) + ".",
            "reference": gl.proof_text(r, 2000),
        }))  # fmt: skip
        out = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", SEED_CODE],
            cwd=gl.ROOT,
            env={**env, "RENDER_BENCH_SPEC": str(spec)},
            check=True,
            capture_output=True,
            text=True,
        )
        seeded = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"proof: {len(text):,} characters, {seeded['formulas']} formulas")
        with gl.asgi_server(env, workdir) as (port, _pid), sync_playwright() as pw:
            origin = f"http://127.0.0.1:{port}"
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            context = browser.new_context(viewport={"width": 1366, "height": 900})
            page = context.new_page()
            page.goto(f"{origin}/login/")
            page.fill("input[name=username]", "render_grader")
            page.fill("input[name=password]", gl.PASSWORD)
            page.click("form.login button[type=submit]")
            page.wait_for_url(f"{origin}/")
            page.goto(f"{origin}/campaigns/{seeded['campaign']}/grade/")
            page.click("#next-form button[type=submit]")
            page.wait_for_url("**/grade/*/")
            url = page.url
            if args.page == "item":  # the read-only proof page: no grading.js or grading.css
                url = url.replace("/grade/", "/items/")
            if args.at_proof:
                url += "#proof-text"
            # Measure in a fresh context (cold cache for the first load) with the same session.
            state = context.storage_state()
            context.close()
            context = browser.new_context(
                viewport={"width": 1366, "height": 900}, storage_state=state
            )
            context.add_init_script(INIT_SCRIPT)
            if args.css:
                css = json.dumps(args.css)
                context.add_init_script(
                    f"document.documentElement.appendChild(Object.assign("
                    f"document.createElement('style'), {{textContent: {css}}}));"
                )
            page = context.new_page()
            loads = []
            for _ in range(args.loads):
                if args.at_proof:
                    # From another page of the site, so that the URL with a fragment is
                    # loaded again rather than scrolled to (the same renderer process, as
                    # when a grader comes from another page).
                    page.goto(f"{origin}/healthz")
                page.goto(url, wait_until="load")
                page.wait_for_function(
                    "() => window.__pd && window.__pd.render && window.__pd.all", timeout=30_000
                )
                loads.append(page.evaluate(COLLECT))
            profile = js_profile(context, page, url)
            browser.close()
    finally:
        if not args.keep_db:
            gl.drop_database(args.pg_url, args.db)
        shutil.rmtree(workdir, ignore_errors=True)

    keys = ("server_ms", "ttfb_ms", "dom_content_loaded_ms", "math_ms", "fcp_ms", "render_ms",
            "load_ms", "all_ms", "math_js_ms")  # fmt: skip
    print(f"\n{'load':<6}" + "".join(f"{k.removesuffix('_ms'):>13}" for k in keys) + "  (ms)")
    for i, m in enumerate(loads):
        label = "cold" if i == 0 else str(i)
        print(f"{label:<6}" + "".join(f"{(m[k] or float('nan')):>13.1f}" for k in keys))
    print("\nmain-thread JavaScript time by script in one more load (CDP sampling profiler, ms):")
    print("  " + ", ".join(f"{name} {ms:.0f}" for name, ms in profile[:8]))
    bad = [m for m in loads if m["katex"] != seeded["formulas"]]
    if bad:
        print(f"WARNING: {len(bad)} loads typeset fewer formulas than {seeded['formulas']}")
    raw = max(m["visible_raw"] for m in loads)
    if raw:
        print(f"WARNING: a load painted {raw} formulas on screen as raw TeX")
    warm = loads[1:] or loads

    def med(key: str) -> float:
        return round(statistics.median(m[key] for m in warm if m[key] is not None), 1)

    print(
        f"RESULT render_50kb_ms={med('render_ms')}"
        f" render_50kb_cold_ms={round(loads[0]['render_ms'], 1)}"
        f" all_math_50kb_ms={med('all_ms')} visible_raw_max={raw}"
        f" visible_formulas={med('visible')}"
        f" math_50kb_ms={med('math_ms')} ttfb_50kb_ms={med('ttfb_ms')}"
        f" server_50kb_ms={med('server_ms')}"
        f" dcl_50kb_ms={med('dom_content_loaded_ms')} katex_ms={med('math_js_ms')}"
        f" formulas={seeded['formulas']} page={args.page}"
        f" proof_chars={len(text)} loads={len(loads)}"
        + (" at_proof=1" if args.at_proof else "")
        + (" css=what-if" if args.css else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
