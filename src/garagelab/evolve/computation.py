"""JAX computations as data: how a candidate's function crosses the trust boundary.

The candidate's side traces the function (`jax.make_jaxpr`) and writes the jaxpr out as plain
values (`export`): equations naming a primitive, their inputs (earlier values or literal
arrays), their parameters (numbers, tuples, dtypes and a few named JAX types), nested jaxprs
for `jit`, `custom_jvp_call`, `scan` and `cond`. The trusted side rebuilds it (`load`) by
binding primitives from an allow-list: arithmetic, comparisons, structural and reduction
operations. Nothing in it can call back into Python, touch a file, draw a random number or loop
without a bound (`while` is refused, `scan` lengths are capped); a custom derivative or a
sharding is dropped, since the trusted side differentiates and places the computation itself.

So the trusted side, not the candidate, decides what is differentiated and batched: `jax.grad`
and `jax.vmap` of the rebuilt function are JAX's own, and rows of a vmap cannot see each other.
(An exported StableHLO module with its exported VJP would let the candidate choose the
gradient: a gradient that looks at held-out trials could steer a fit towards them.)
"""

from __future__ import annotations

import enum
import functools
import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jax
import jax.extend.core.primitives as _primitives
import numpy as np

from garagelab.evolve import wire
from garagelab.evolve.judge import Invalid

# first-order primitives the trusted side binds: pure functions of their inputs
ALLOWED = frozenset(
    """abs acos acosh add and argmax argmin asin asinh atan atan2 atanh bessel_i0e bessel_i1e
    broadcast_in_dim cbrt ceil clamp concatenate convert_element_type copy copy_p cos cosh
    cumlogsumexp cummax cummin cumprod cumsum digamma div dot_general dynamic_slice
    dynamic_update_slice eq erf erf_inv erfc exp exp2 expm1 floor gather ge gt integer_pow iota
    is_finite le lgamma log log1p logistic lt max min mul ne neg nextafter not or pad pow
    reduce_and reduce_max reduce_min reduce_or reduce_prod reduce_sum rem reshape rev round rsqrt
    scatter scatter_add scatter_max scatter_min scatter_mul select_n sign sin sinh slice sort split
    sqrt square squeeze stop_gradient sub tan tanh transpose xor""".split()  # noqa: SIM905
)
# higher-order primitives run as their nested jaxpr (the parameter named here)
INLINED = {
    "jit": "jaxpr",
    "pjit": "jaxpr",
    "closed_call": "call_jaxpr",
    "core_call": "call_jaxpr",
    "custom_jvp_call": "call_jaxpr",
    "custom_vjp_call": "call_jaxpr",
    "remat": "jaxpr",
    "checkpoint": "jaxpr",
}
CONTROL = frozenset({"scan", "cond"})
MAX_DEPTH = 8
MAX_EQUATIONS = 20_000
MAX_CONST_ELEMENTS = 1 << 20
MAX_SCAN = 4096


@functools.cache
def _enum_types() -> dict[str, type]:
    return {t.__name__: t for t in (jax.lax.GatherScatterMode, jax.lax.RoundingMethod, jax.lax.Precision)}


@functools.cache
def _record_types() -> dict[str, type]:
    return {t.__name__: t for t in (jax.lax.GatherDimensionNumbers, jax.lax.ScatterDimensionNumbers)}


@functools.cache
def _primitive_table() -> dict[str, object]:
    table = {p.name: p for p in vars(_primitives).values() if isinstance(p, jax.extend.core.Primitive)}
    try:  # not re-exported by jax.extend in every version
        from jax._src.lax.lax import split_p

        table.setdefault(split_p.name, split_p)
    except ImportError:
        pass
    return {name: p for name, p in table.items() if name in ALLOWED}


# -- the candidate's side ----------------------------------------------------------------------
def export(function: Callable, *example_args) -> dict:
    """`function` traced at `example_args` (arrays or jax.ShapeDtypeStruct), as plain data."""
    closed = jax.make_jaxpr(function)(*example_args)
    return _graph(closed.jaxpr, closed.consts)


def _graph(jaxpr, consts: Sequence) -> dict:
    ids: dict[object, int] = {}

    def new(var) -> int:
        if type(var).__name__ == "DropVar":
            return -1
        ids[var] = len(ids)
        return ids[var]

    def ref(atom):
        if hasattr(atom, "val"):  # a literal
            return {"literal": np.asarray(atom.val, dtype=atom.aval.dtype)}
        return ids[atom]

    inputs = [new(v) for v in jaxpr.invars]
    const_ids = [new(v) for v in jaxpr.constvars]
    equations = []
    for eqn in jaxpr.eqns:
        equations.append(
            {
                "primitive": eqn.primitive.name,
                "in": [ref(a) for a in eqn.invars],
                "params": {k: _param(v) for k, v in eqn.params.items()},
                "out": [new(v) for v in eqn.outvars],
            }
        )
    return {
        "inputs": inputs,
        "consts": [{"id": i, "value": np.asarray(c)} for i, c in zip(const_ids, consts, strict=True)],
        "equations": equations,
        "outputs": [ref(a) for a in jaxpr.outvars],
    }


def _param(value):
    kind = type(value).__name__
    if kind == "ClosedJaxpr":
        return {"jaxpr": _graph(value.jaxpr, value.consts)}
    if kind == "Jaxpr":
        return {"jaxpr": _graph(value, ())}
    if isinstance(value, enum.Enum):
        return {"enum": type(value).__name__, "name": value.name}
    if isinstance(value, np.dtype):
        return {"dtype": value.name}
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {"record": type(value).__name__, "fields": {k: _param(v) for k, v in value._asdict().items()}}
    if isinstance(value, list | tuple):
        return {"tuple": [_param(v) for v in value]}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    return {"opaque": kind}


# -- the trusted side --------------------------------------------------------------------------
@dataclass(frozen=True)
class Equation:
    primitive: str
    inputs: tuple  # ints (values defined earlier) or np.ndarray literals
    params: dict
    outputs: tuple[int, ...]


@dataclass(frozen=True)
class Graph:
    inputs: tuple[int, ...]
    consts: tuple[tuple[int, np.ndarray], ...]
    equations: tuple[Equation, ...]
    outputs: tuple
    signature: str  # a hash of the exported form: equal graphs, equal signatures


class Loader:
    """Checks an exported graph and rebuilds it as a JAX function."""

    def __init__(self) -> None:
        self.primitives = _primitive_table()
        self.enums = _enum_types()
        self.records = _record_types()
        self.equations = 0
        self.const_elements = 0

    def graph(self, data, depth: int = 0) -> Graph:
        if depth > MAX_DEPTH:
            raise Invalid(f"the computation nests more than {MAX_DEPTH} levels of jaxprs")
        if not isinstance(data, dict) or set(data) != {"inputs", "consts", "equations", "outputs"}:
            raise Invalid("a jaxpr that is not {inputs, consts, equations, outputs}")
        defined: set[int] = set()

        def define(index) -> int:
            if not _whole(index) or index < -1 or index in defined:
                raise Invalid(f"a jaxpr that defines value {index!r} twice or out of order")
            if index >= 0:
                defined.add(index)
            return index

        def use(atom):
            if isinstance(atom, dict) and set(atom) == {"literal"}:
                literal = atom["literal"]
                if not isinstance(literal, np.ndarray) or literal.size > 1 << 16:
                    raise Invalid("a literal that is not a small array")
                return literal
            if not _whole(atom) or atom not in defined:
                raise Invalid(f"a jaxpr that uses value {atom!r} before defining it")
            return atom

        inputs = tuple(define(i) for i in _listed(data["inputs"], "inputs"))
        consts = []
        for entry in _listed(data["consts"], "consts"):
            if not isinstance(entry, dict) or not isinstance(entry.get("value"), np.ndarray):
                raise Invalid("a constant that is not an array")
            self.const_elements += entry["value"].size
            consts.append((define(entry.get("id")), entry["value"]))
        if self.const_elements > MAX_CONST_ELEMENTS:
            raise Invalid(f"the computation carries more than {MAX_CONST_ELEMENTS:,} constant numbers")
        equations = []
        for raw in _listed(data["equations"], "equations"):
            self.equations += 1
            if self.equations > MAX_EQUATIONS:
                raise Invalid(f"the computation has more than {MAX_EQUATIONS:,} equations")
            if not isinstance(raw, dict) or set(raw) != {"primitive", "in", "params", "out"}:
                raise Invalid("an equation that is not {primitive, in, params, out}")
            name = raw["primitive"]
            if name not in self.primitives and name not in INLINED and name not in CONTROL:
                raise Invalid(f"the computation uses the primitive {name!r}, which the trusted side does not run")
            ins = tuple(use(a) for a in _listed(raw["in"], "equation inputs"))
            if not isinstance(raw["params"], dict):
                raise Invalid("equation parameters that are not a dict")
            params = {str(k): self.param(v, depth) for k, v in raw["params"].items()}
            outs = tuple(define(o) for o in _listed(raw["out"], "equation outputs"))
            equations.append(Equation(name, ins, params, outs))
        outputs = tuple(use(a) for a in _listed(data["outputs"], "outputs"))
        return Graph(inputs, tuple(consts), tuple(equations), outputs, _signature(data))

    def param(self, value, depth: int):
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if not isinstance(value, dict) or len(value) not in (1, 2):
            raise Invalid(f"an equation parameter of an unknown form: {str(value)[:80]}")
        if "jaxpr" in value:
            return self.graph(value["jaxpr"], depth + 1)
        if "tuple" in value:
            return tuple(self.param(v, depth) for v in _listed(value["tuple"], "a tuple parameter"))
        if "dtype" in value:
            if value["dtype"] not in wire.DTYPES:
                raise Invalid(f"a parameter of dtype {value['dtype']!r}")
            return np.dtype(value["dtype"])
        if "enum" in value and value["enum"] in self.enums:
            try:
                return self.enums[value["enum"]][value["name"]]
            except KeyError:
                raise Invalid(f"no {value['enum']} named {value.get('name')!r}") from None
        if "record" in value and value["record"] in self.records and isinstance(value.get("fields"), dict):
            fields = {str(k): self.param(v, depth) for k, v in value["fields"].items()}
            try:
                return self.records[value["record"]](**fields)
            except TypeError as exc:
                raise Invalid(f"a malformed {value['record']}: {exc}") from None
        if "opaque" in value:
            return Opaque(str(value["opaque"]))
        raise Invalid(f"an equation parameter of an unknown form: {str(value)[:80]}")

    # -- running the rebuilt graph (traced by JAX on the trusted side) -----------------------
    def run(self, graph: Graph, args: Sequence) -> list:
        if len(args) != len(graph.inputs):
            raise Invalid(f"a jaxpr of {len(graph.inputs)} inputs called with {len(args)}")
        env = dict(zip(graph.inputs, args, strict=True))
        env.update(graph.consts)
        for eqn in graph.equations:
            values = [env[a] if isinstance(a, int) else a for a in eqn.inputs]
            outs = self._apply(eqn, values)
            if len(outs) != len(eqn.outputs):
                raise Invalid(f"{eqn.primitive} gave {len(outs)} results where the jaxpr names {len(eqn.outputs)}")
            env.update((index, out) for index, out in zip(eqn.outputs, outs, strict=True) if index >= 0)
        return [env[a] if isinstance(a, int) else a for a in graph.outputs]

    def _apply(self, eqn: Equation, values: list) -> list:
        if eqn.primitive == "custom_jvp_call" and (library := _library_function(eqn, values)) is not None:
            return [library(*values)]
        if eqn.primitive in INLINED:
            inner = eqn.params.get(INLINED[eqn.primitive])
            if not isinstance(inner, Graph):
                raise Invalid(f"{eqn.primitive} without its jaxpr")
            return self.run(inner, values)
        if eqn.primitive == "scan":
            return self._scan(eqn.params, values)
        if eqn.primitive == "cond":
            branches = eqn.params.get("branches")
            if not isinstance(branches, tuple) or not branches or not all(isinstance(b, Graph) for b in branches):
                raise Invalid("cond without its branches")
            functions = [lambda *ops, b=b: self.run(b, ops) for b in branches]
            return list(jax.lax.switch(values[0], functions, *values[1:]))
        primitive = self.primitives[eqn.primitive]
        if any(isinstance(v, Opaque) for v in eqn.params.values()):
            raise Invalid(f"{eqn.primitive} has a parameter that cannot cross the boundary")
        try:
            out = primitive.bind(*values, **eqn.params)
        except Exception as exc:  # wrong parameters or shapes: JAX's own checks
            raise Invalid(f"{eqn.primitive}: {type(exc).__name__}: {str(exc)[:300]}") from None
        return list(out) if primitive.multiple_results else [out]

    def _scan(self, params: dict, values: list) -> list:
        body, length = params.get("jaxpr"), params.get("length")
        consts, carried = params.get("num_consts"), params.get("num_carry")
        if not isinstance(body, Graph) or not all(_whole(n) for n in (length, consts, carried)):
            raise Invalid("scan without its body, length and counts")
        if not 0 <= length <= MAX_SCAN or consts + carried > len(values):
            raise Invalid(f"a scan of length {length} (at most {MAX_SCAN}) or with miscounted inputs")
        fixed, carry, xs = values[:consts], values[consts : consts + carried], values[consts + carried :]

        def step(c, x):
            outs = self.run(body, [*fixed, *c, *x])
            return outs[:carried], outs[carried:]

        carry, ys = jax.lax.scan(step, carry, xs, length=length, reverse=bool(params.get("reverse", False)))
        return [*carry, *ys]


def _signature(data) -> str:
    try:
        return hashlib.sha256(wire.encode(data)).hexdigest()
    except wire.WireError:
        return ""


# JAX's own functions with a custom derivative (softplus and log_sigmoid go through logaddexp):
# where a candidate's custom_jvp_call computes exactly one of these, the trusted side calls
# the function itself and so uses JAX's derivative; any other custom derivative is dropped
@functools.cache
def _library() -> tuple[Callable, ...]:
    import jax.numpy as jnp
    import jax.scipy.special as special

    return (
        jnp.logaddexp,
        jnp.logaddexp2,
        jax.nn.relu,
        jax.nn.relu6,
        special.xlogy,
        special.xlog1py,
        special.logit,
        special.log_ndtr,
        jax.nn.log1mexp,
    )


def _library_function(eqn: Equation, values: list) -> Callable | None:
    """The library function whose custom_jvp_call is exactly `eqn`'s, at these inputs (or None)."""
    inner = eqn.params.get("call_jaxpr")
    if not isinstance(inner, Graph) or eqn.params.get("num_consts", 0) != 0:
        return None
    avals = tuple((tuple(jax.numpy.shape(v)), jax.numpy.result_type(v).name) for v in values)
    for index, function in enumerate(_library()):
        if _reference(index, avals) == inner.signature:
            return function
    return None


@functools.lru_cache(maxsize=1024)
def _reference(index: int, avals: tuple) -> str:
    """The signature of library function `index`'s custom_jvp_call at `avals` ("" if it has
    none, or does more than that call)."""
    try:
        closed = jax.make_jaxpr(_library()[index])(*(jax.ShapeDtypeStruct(s, d) for s, d in avals))
    except Exception:
        return ""
    eqns = closed.jaxpr.eqns
    if len(eqns) != 1 or eqns[0].primitive.name != "custom_jvp_call":
        return ""
    if list(eqns[0].invars) != list(closed.jaxpr.invars) or list(eqns[0].outvars) != list(closed.jaxpr.outvars):
        return ""
    inner = eqns[0].params["call_jaxpr"]
    return _signature(_graph(inner.jaxpr, inner.consts))


@dataclass(frozen=True)
class Opaque:
    """A parameter the candidate's side could not write out (a callable, a mesh): only the
    primitives that ignore it (inlined calls) accept it."""

    kind: str


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _listed(value, what: str) -> list:
    if not isinstance(value, list):
        raise Invalid(f"{what} that are not a list")
    return value


def load(data, expected_inputs: Sequence) -> tuple[Callable, list]:
    """The exported function `data` rebuilt on the trusted side, checked against
    `expected_inputs` (jax.ShapeDtypeStruct each): (function, its output avals). Invalid if the
    data is malformed, uses what the trusted side does not run, or does not fit those inputs."""
    loader = Loader()
    graph = loader.graph(data)

    def function(*args):
        return loader.run(graph, list(args))

    try:
        outputs = jax.eval_shape(function, *expected_inputs)
    except Invalid:
        raise
    except Exception as exc:
        raise Invalid(f"the computation does not run on its inputs: {type(exc).__name__}: {str(exc)[:300]}") from None
    return function, list(outputs)


def work(function: Callable, *inputs) -> int:
    """Numbers the traced `function` computes per call (each equation's output sizes, scans'
    bodies counted `length` times): what a caller budgets before running it many times."""

    def count(jaxpr, repeat: int) -> int:
        total = 0
        for eqn in jaxpr.eqns:
            total += repeat * sum(math.prod(v.aval.shape) for v in eqn.outvars if hasattr(v.aval, "shape"))
            inner = repeat * (eqn.params["length"] if eqn.primitive.name == "scan" else 1)
            for value in eqn.params.values():
                for sub in value if isinstance(value, tuple) else (value,):
                    if type(sub).__name__ == "ClosedJaxpr":
                        total += count(sub.jaxpr, inner)
        return total

    return count(jax.make_jaxpr(function)(*inputs).jaxpr, 1)
