"""JAX computations as data: the rebuilt function computes what the original does, with JAX's
own derivatives; what could call out, loop without bound, or carry a derivative of the
candidate's making is refused or dropped; a malformed graph is Invalid, never a crash."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from garagelab.evolve.computation import export, load, work
from garagelab.evolve.judge import Invalid
from garagelab.evolve.wire import decode, encode

F32 = jax.ShapeDtypeStruct((3,), jnp.float32)


def rebuilt(function, *inputs):
    """`function` exported, sent through the wire, and loaded: what the trusted side gets."""
    return load(decode(encode(export(function, *inputs)), 1 << 24), list(inputs))


def sample(v):
    out = jnp.tanh(v) * jax.nn.softplus(v[0]) + jnp.cumsum(v) / (1.0 + v @ v)
    out = jnp.where(out > 0, out, jax.nn.relu(out) - jax.nn.log_sigmoid(v))
    out = out.at[1].set(jnp.max(v)) + jax.lax.fori_loop(0, 3, lambda i, c: c * 0.5 + v, v)
    return [jax.lax.cond(v[0] > 0, lambda a: a + 1.0, lambda a: a - 1.0, out), jnp.argmax(v)]


@pytest.mark.parametrize("point", [[0.0, 0.0, 0.0], [0.5, -1.2, 2.0], [-3.0, 1.0, 0.1]])
def test_values_and_gradients_match_the_original(point: list[float]) -> None:
    function, outputs = rebuilt(sample, F32)
    v = jnp.asarray(point, jnp.float32)
    assert [o.shape for o in outputs] == [(3,), ()]
    for ours, theirs in zip(function(v), sample(v), strict=True):
        assert np.array_equal(np.asarray(ours), np.asarray(theirs))

    def loss(f):
        return lambda v: f(v)[0].sum()

    assert np.array_equal(jax.grad(loss(function))(v), jax.grad(loss(sample))(v))


def test_the_trusted_side_batches_it_and_rows_stay_apart() -> None:
    function, _ = rebuilt(sample, F32)
    batch = jax.random.normal(jax.random.PRNGKey(0), (5, 3))
    together = jax.vmap(lambda v: function(v)[0])(batch)
    apart = np.stack([np.asarray(function(row)[0]) for row in batch])
    assert np.allclose(together, apart, atol=1e-6)


@pytest.mark.parametrize(
    ("function", "why"),
    [
        (lambda v: [jax.pure_callback(lambda a: a, jax.ShapeDtypeStruct((3,), jnp.float32), v)], "pure_callback"),
        (lambda v: [v + jax.random.normal(jax.random.PRNGKey(0), (3,))], "random"),
        (lambda v: [jax.lax.while_loop(lambda c: c[0] < 10.0, lambda c: c + 1.0, v)], "while"),
        (lambda v: [jax.lax.scan(lambda c, _: (c, None), v, None, length=100_000)[0]], "scan of length"),
    ],
    ids=["callback", "randomness", "unbounded loop", "huge scan"],
)
def test_what_could_call_out_or_run_unbounded_is_refused(function, why: str) -> None:
    with pytest.raises(Invalid, match=why):
        rebuilt(function, F32)


def test_a_custom_derivative_of_the_candidate_is_dropped_and_jaxs_own_kept() -> None:
    @jax.custom_jvp
    def same(v):
        return v

    same.defjvp(lambda primals, tangents: (primals[0], tangents[0] * 1000.0))
    function, _ = rebuilt(lambda v: [jax.nn.softplus(same(v))], F32)
    zero = jnp.zeros(3, jnp.float32)
    # JAX's softplus derivative at 0 is 1/2; the candidate's x1000 is gone; an inlined
    # logaddexp would give 0 (|x|'s derivative at 0 is taken as +1)
    assert np.allclose(jax.grad(lambda v: function(v)[0].sum())(zero), 0.5)


def test_a_forged_library_name_runs_as_written() -> None:
    """A custom_jvp that is not exactly JAX's logaddexp is not replaced by it."""

    @jax.custom_jvp
    def logaddexp(a, b):
        return a * 0 + 7.0

    logaddexp.defjvp(lambda primals, tangents: (logaddexp(*primals), tangents[0]))
    function, _ = rebuilt(lambda v: [logaddexp(v, 0.0)], F32)
    assert np.allclose(function(jnp.ones(3))[0], 7.0)


@pytest.mark.parametrize(
    "damage",
    [
        lambda g: g.update(
            equations=g["equations"] + [{"primitive": "add", "in": [999, 0], "params": {}, "out": [50]}]
        ),
        lambda g: g["equations"][0].update(out=[0]),
        lambda g: g.update(outputs=[{"literal": "not an array"}]),
        lambda g: g["equations"][0].update(params={"x": {"opaque": "Mesh", "extra": 1, "more": 2}}),
        lambda g: g["equations"][0].update(params={"new_dtype": {"dtype": "complex128"}}),
        lambda g: g.update(consts=[{"id": 77, "value": np.zeros(1 << 21)}]),
        lambda g: g.update(inputs="everything"),
    ],
    ids=[
        "undefined value",
        "redefined value",
        "bad literal",
        "unknown parameter",
        "bad dtype",
        "huge constant",
        "bad form",
    ],
)
def test_a_malformed_graph_is_invalid(damage) -> None:
    graph = export(lambda v: [jnp.tanh(v) * 2.0], F32)
    damage(graph)
    with pytest.raises(Invalid):
        load(graph, [F32])


def test_work_counts_scan_bodies_per_step() -> None:
    def scanned(v):
        return [jax.lax.scan(lambda c, _: (c * 2.0, None), v, None, length=10)[0]]

    function, _ = rebuilt(scanned, F32)
    assert work(function, F32) >= 30
