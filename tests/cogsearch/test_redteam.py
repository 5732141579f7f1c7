"""Red team for cogsearch: hostile cognitive models that try to forge their score, patch the
fit, reach or memorise the data, smuggle callbacks, randomness, unbounded loops or a custom
gradient into the computation they hand over, or break its shapes; run lint on and off, as root
and as `nobody` (tests/redteam.py). Each fails or scores exactly what its behaviour is worth.
And end to end: a replayed search of hostile programs whose best score and report are honest."""

from __future__ import annotations

import json
import os
from pathlib import Path

from garagelab.cli import main
from garagelab.cogsearch.data import load_npz
from garagelab.cogsearch.programs import SEED
from garagelab.cogsearch.simulate import generate
from garagelab.cogsearch.task import build_task
from garagelab.evolve.database import ProgramDB
from garagelab.llm.records import CallRecord
from tests.redteam import MARK, Hostile, campaign_tests

CONTROL = SEED


def make_task(stage, program):
    if not stage.data.exists():
        generate("q-learning", subjects=4, sessions=2, trials=40, seed=5).save_npz(stage.data)
    return build_task(stage.data, load_npz(stage.data), restarts=1, max_steps=100)


def seed(before: str = "", replace: tuple[str, str] = ("", ""), module: str = "") -> str:
    """The seed program with `before` run first in `agent` (indented), one replacement, and
    module-level code."""
    body = "\n".join("    " + line for line in before.strip().splitlines())
    source = SEED.replace("    p = jnp.clip(params, -5.0, 5.0)\n", f"{body}\n    p = jnp.clip(params, -5.0, 5.0)\n")
    if replace[0]:
        assert replace[0] in source, replace[0]
        source = source.replace(*replace)
    return source.replace("num_params = 2\n", f"num_params = 2\n{module}\n")


FRAME = 'b\'{"answer": {"score": 0.99}}\''
PROGRAMS = [
    Hostile(
        "forged answer frame",
        seed(
            module="import os, struct\nHEAD = struct.pack('<Q', 2) + b'[]' + " + FRAME + "\n"
            "os.write(3, struct.pack('<QQ', len(HEAD), len(HEAD)) + HEAD)"
        ),
        fails_as=("invalid",),
        imports=("os", "struct"),
    ),
    Hostile(
        "patches the fit and the score through sys.modules",
        seed(
            module="import sys\nfit = sys.modules['garagelab.cogsearch.fit']\n"
            "fit.Likelihood._score = lambda *a: 0.99\nfit.FitResult.normalized_likelihood = 0.99\n"
            "sys.modules.setdefault('garagelab.cogsearch.evaluate', sys).make_judge = None"
        ),
        honest="control",
        imports=("sys",),
    ),
    Hostile(
        "looks for the data through gc",
        seed(
            module="import gc\nFOUND = [o for o in gc.get_objects() if type(o).__name__ == 'BehaviourDataset']\n"
            "assert not FOUND, 'the data is in the candidate process'"
        ),
        honest="control",
        imports=("gc",),
    ),
    Hostile(
        "memorises the data file",
        seed(module="CHOICES = jnp.load('{DATA}')['choices']"),
        fails_as=("exception", "forbidden"),
    ),
    Hostile(
        "forges the trace: a count of parameters that is not one",
        seed(
            module="import sys\nm = sys.modules['garagelab.cogsearch.exported']\nREAL = m.trace\n"
            "m.trace = lambda p, w: {**REAL(p, w), 'num_params': 999}"
        ),
        fails_as=("invalid",),
        imports=("sys",),
    ),
    Hostile(
        "forges the trace: an equation the trusted side does not run",
        seed(
            module="import sys\nm = sys.modules['garagelab.cogsearch.exported']\nREAL = m.trace\n"
            "def forged(p, w):\n    t = REAL(p, w)\n    t['step']['equations'][0]['primitive'] = 'pure_callback'\n"
            "    return t\nm.trace = forged"
        ),
        fails_as=("invalid",),
        imports=("sys",),
    ),
    Hostile(
        "forges the trace: a value used before it is defined",
        seed(
            module="import sys\nm = sys.modules['garagelab.cogsearch.exported']\nREAL = m.trace\n"
            "def forged(p, w):\n    t = REAL(p, w)\n    t['step']['outputs'] = [10 ** 6]\n    return t\n"
            "m.trace = forged"
        ),
        fails_as=("invalid",),
        imports=("sys",),
    ),
    Hostile(
        "one logit",
        seed(replace=("logits = beta * q\n", "logits = jnp.sum(beta * q, keepdims=True)\n")),
        fails_as=("invalid",),
    ),
    Hostile(
        "three logits for two actions",
        seed(replace=("logits = beta * q\n", "logits = jnp.append(beta * q, 0.0)\n")),
        fails_as=("invalid",),
    ),
    Hostile(
        "integer logits",
        seed(replace=("logits = beta * q\n", "logits = jnp.round(beta * q).astype(jnp.int32)\n")),
        fails_as=("invalid",),
    ),
    Hostile(
        "not-a-number logits",
        seed(replace=("logits = beta * q\n", "logits = beta * q * jnp.nan\n")),
        fails_as=("invalid",),
    ),
    Hostile(
        "infinite logits", seed(replace=("logits = beta * q\n", "logits = beta * q / 0.0\n")), fails_as=("invalid",)
    ),
    Hostile(
        "a state that changes shape",
        seed(replace=("return logits, q", "return logits, jnp.append(q, 0.0)")),
        fails_as=("invalid",),
    ),
    Hostile(
        "a huge state",
        seed(replace=("return logits, q", "return logits, q + jnp.zeros((10 ** 6, 2))")),
        fails_as=("invalid",),
    ),
    Hostile(
        "a callback into Python",
        seed(
            replace=(
                "logits = beta * q\n",
                "logits = jax.pure_callback(lambda v: v * 0 + 9.0, "
                "jax.ShapeDtypeStruct((2,), jnp.float32), beta * q)\n",
            )
        ),
        fails_as=("invalid",),
    ),
    Hostile("a debug print", seed("jax.debug.print('{x}', x=params)"), fails_as=("invalid",)),
    Hostile(
        "randomness",
        seed(replace=("logits = beta * q\n", "logits = beta * q + jax.random.normal(jax.random.PRNGKey(0), (2,))\n")),
        fails_as=("invalid",),
    ),
    Hostile(
        "an unbounded loop",
        seed(
            replace=(
                "logits = beta * q\n",
                "logits = jax.lax.while_loop(lambda v: v[0] < 1e30, lambda v: v + 1.0, beta * q)\n",
            )
        ),
        fails_as=("invalid",),
    ),
    Hostile(
        "a scan of a million steps",
        seed(
            replace=(
                "logits = beta * q\n",
                "logits = jax.lax.scan(lambda c, _: (c * 1.0, None), beta * q, None, length=10 ** 6)[0]\n",
            )
        ),
        fails_as=("invalid",),
    ),
    Hostile(
        "a collective over other rows of a batch",
        seed(replace=("logits = beta * q\n", "logits = beta * q + jax.lax.psum(q, 'rows')\n")),
        fails_as=("exception", "invalid"),
    ),
    Hostile(
        "a custom gradient that lies",
        seed(
            module="@jax.custom_jvp\ndef same(v):\n    return v\n\n\n@same.defjvp\ndef same_jvp(primals, tangents):\n"
            "    return primals[0], tangents[0] * 1000.0\n",
            replace=("beta = jax.nn.softplus(p[0]) * 3.0", "beta = jax.nn.softplus(same(p[0])) * 3.0"),
        ),
        honest="control",
    ),
    Hostile(
        "leaves files and a survivor behind, and calls home",
        seed(
            module="import os, socket\nopen('/tmp/{MARK}-cog', 'w').write('x')\nopen('/dev/shm/{MARK}-cog', 'w')\n"
            "if os.fork() == 0:\n    os.setsid()\n    os.execv('/bin/sleep', ['sleep', '{SURVIVOR}'])\n"
            "try:\n    socket.create_connection(('127.0.0.1', {PORT}), timeout=1)\nexcept OSError:\n    pass"
        ),
        honest="control",
        imports=("os", "socket"),
    ),
    Hostile(
        "reads the secret and the run store while traced",
        seed(
            module="import os\nfor path in ('{SECRET_FILE}', '{STORE}', '{REPO}/pyproject.toml'):\n"
            "    if os.path.exists(path):\n        raise RuntimeError(open(path, 'rb').read()[:100])"
        ),
        honest="control",
        imports=("os",),
    ),
    Hostile("num_params is not a number", SEED.replace("num_params = 2", "num_params = '2'"), fails_as=("exception",)),
    Hostile("num_params is huge", SEED.replace("num_params = 2", "num_params = 10 ** 9"), fails_as=("exception",)),
]


results, test_a_hostile_program_fails_or_is_scored_honestly, test_hostile_programs_change_no_other_evaluation = (
    campaign_tests(__name__, PROGRAMS, lambda before, after: before == after and 0.5 < before < 1)
)


def test_enough_hostile_programs() -> None:
    from tests.evolve.test_redteam import PROGRAMS as EVOLVE

    assert len(PROGRAMS) + len(EVOLVE) >= 40


# -- end to end: a replayed search of hostile programs, then the report ---------------------------
START = "    p = jnp.clip(params, -5.0, 5.0)\n"
LOGITS = "logits = beta * q\n"


def _agent(source: str) -> str:
    return source[source.index("def agent") :]


def _answers(marker: Path, data: Path) -> list[tuple[str, str | None]]:
    """(model answer, the same agent without its attack or None if it must fail). All pass the
    lint: only the walls and the boundary stop them. One would leave a marker on the host if it
    ever ran outside the sandbox (the old report ran discovered programs as root)."""
    seed = _agent(SEED)
    leak = f"    jnp.save({str(marker)!r}, 0.0)\n{START}"
    liar = "    same = jax.custom_jvp(lambda v: v)\n    same.defjvp(lambda x, t: (x[0], t[0] * 1000.0))\n"
    callback = "logits = jax.pure_callback(lambda v: v * 0 + 9.0, jax.ShapeDtypeStruct((2,), jnp.float32), q)\n"
    return [
        (
            seed.replace(START, leak).replace(LOGITS, "logits = 1.5 * beta * q\n"),
            seed.replace(LOGITS, "logits = 1.5 * beta * q\n"),
        ),
        (
            seed.replace(START, liar + START)
            .replace("softplus(p[0])", "softplus(same(p[0]))")
            .replace(LOGITS, "logits = 0.8 * beta * q\n"),
            seed.replace(LOGITS, "logits = 0.8 * beta * q\n"),
        ),
        (seed.replace(START, f"    memory = jnp.load({str(data)!r})\n{START}"), None),
        (seed.replace(LOGITS, callback), None),
        (seed.replace(LOGITS, "logits = jnp.sum(beta * q, keepdims=True)\n"), None),
    ]


def test_a_replayed_search_of_hostile_programs_stays_honest(runs_dir: Path, tmp_path: Path) -> None:
    from garagelab.cogsearch.search import SEARCH_DATA, CogSearchConfig, run_task
    from garagelab.evolve.code import replace_function

    marker = Path("/tmp") / f"{MARK}-report-{os.getpid()}.npy"
    data = runs_dir / "cogsearch" / "*" / SEARCH_DATA  # the attacker's guess; no sandbox sees the run store
    answers = _answers(marker, data)
    recording = tmp_path / "calls.jsonl"
    lines = [
        CallRecord("chat", {"messages": [{"i": i}]}, f"```python\n{text}```", 1, 1, 0.0, "replay").__dict__
        for i, (text, _) in enumerate(answers)
    ]
    recording.write_text("".join(json.dumps(line) + "\n" for line in lines))
    args = ["--restarts", "1", "--max-steps", "100", "--seed", "3", "--no-report"]
    args += ["--proposers", "replay", "--replay", str(recording), "--islands", "1"]
    budget = str(len(answers) + 1)
    assert main(["cogsearch", "run", "--data", "synthetic:q-learning:9", "--budget", budget, "--name", "h", *args]) == 0
    (directory,) = (runs_dir / "cogsearch").iterdir()
    db = ProgramDB(directory / "programs.sqlite")
    programs = {p.source: p for p in db.programs() if p.proposer == "replay"}
    db.close()
    task = run_task(directory, CogSearchConfig.from_dict(json.loads((directory / "config.json").read_text())))
    for hostile, clean in answers:
        program = programs[replace_function(SEED, hostile, "agent")]
        if clean is None:
            assert program.score is None and program.failure != "task_error", program
        else:  # scored exactly as the same agent without its attack
            assert program.score == task.evaluate(replace_function(SEED, clean, "agent")).score
    assert main(["cogsearch", "report", str(directory), "--top", "3", "--no-gru"]) == 0
    report = json.loads((directory / "report.json").read_text())
    by_name = {m["name"]: m for m in report["models"]}
    seed_row = next(m for m in report["models"] if m["kind"] == "discovered" and m["source"].strip() == SEED.strip())
    assert seed_row["heldout"] == by_name["q-learning"]["heldout"]  # the same model, the same held-out score
    assert sum(m["kind"] == "discovered" for m in report["models"]) == 3
    assert not marker.exists(), "a discovered program ran outside the sandbox"
