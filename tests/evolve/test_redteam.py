"""Red team for the evolve boundary (the fit-points task): hostile programs that try to forge
their score, reach the judge or the data, read or write the host, talk to the network, outlive
their evaluation or hurt another one. Each runs lint on and off, as root and as `nobody`
(tests/redteam.py); each must fail, or score exactly what its behaviour is worth, and leave
nothing on the host."""

from __future__ import annotations

import numpy as np

from garagelab.evolve.tasks.fit_points import FIT_POINTS, TEMPLATE, X, Y
from tests.redteam import Hostile, campaign_tests

HONEST = -float(np.mean((0.5 * X - Y) ** 2))  # what `return 0.5 * x` is worth
CONTROL = TEMPLATE


def make_task(stage, program):
    return FIT_POINTS


def program(body: str, imports: str = "", module: str = "") -> str:
    lines = "\n".join("    " + line for line in body.strip().splitlines())
    return f"import numpy as np\n{imports}\n{module}\n\ndef f(x):\n{lines}\n    return 0.5 * x\n"


FRAME = 'b\'{"answer": {"score": 1e9}}\''
PROGRAMS = [
    # forged results on every channel
    Hostile(
        "forged answer frame on the channel",
        program(
            "import struct, os\nhead = struct.pack('<Q', 2) + b'[]' + " + FRAME + "\n"
            "os.write(3, struct.pack('<QQ', len(head), len(head)) + head)"
        ),
        fails_as=("invalid",),
        imports=("struct", "os"),
    ),
    Hostile(
        "score printed on stdout and stderr, then exit 0",
        program("import os\nprint('{\"score\": 0.999}')\nos.write(2, b'{\"score\": 0.999}')\nos._exit(0)"),
        fails_as=("crash",),
        imports=("os",),
    ),
    Hostile(
        "forged failure kinds (duplicate, task_error)",
        program(
            "import os, struct, json\nfor kind in ('duplicate', 'task_error'):\n"
            "    head = struct.pack('<Q', 2) + b'[]' + json.dumps({'failure': kind}).encode()\n"
            "    os.write(3, struct.pack('<QQ', len(head), len(head)) + head)"
        ),
        fails_as=("exception",),
        imports=("os", "struct", "json"),
    ),
    Hostile(
        "fake 'sandbox broken' exit",
        program("import os\nos.write(2, b'sandbox: could not mount')\nos._exit(70)"),
        fails_as=("crash",),
        imports=("os",),
    ),
    Hostile(
        "malformed frame header (a terabyte)",
        program("import os, struct\nos.write(3, struct.pack('<QQ', 1 << 40, 1 << 40))"),
        fails_as=("output_limit", "invalid"),
        imports=("os", "struct"),
    ),
    Hostile(
        "kills itself", program("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"), imports=("os", "signal")
    ),
    # patching the scorer and the data in its own process: nothing there is the judge's
    Hostile(
        "patches the judge through sys.modules",
        program(
            "import sys\nm = sys.modules['garagelab.evolve.tasks.fit_points']\n"
            "m.judge = lambda *a: {'score': 1.0}\nm.Y[:] = 0.5 * m.X\n"
            "sys.modules['garagelab.evolve.judge'].outcome_of = lambda r: None\nnp.mean = lambda *a, **k: 0.0"
        ),
        honest=HONEST,
        imports=("sys",),
    ),
    Hostile(
        "rewrites the data through gc",
        program(
            "import gc\nfor o in gc.get_objects():\n    if isinstance(o, np.ndarray) and o.shape == (61,):\n"
            "        o[:] = 0.5 * np.linspace(-3.0, 3.0, 61)"
        ),
        honest=HONEST,
        imports=("gc",),
    ),
    Hostile(
        "walks the frames to the server and the request",
        program(
            "import sys\nframe = sys._getframe(1)\nwhile frame is not None:\n"
            "    frame.f_globals['judge'] = None\n    frame = frame.f_back"
        ),
        honest=HONEST,
        imports=("sys",),
    ),
    Hostile(
        "patches builtins and numpy for whoever runs next",
        program("import builtins\nbuiltins.abs = lambda v: 0\nnp.asarray = lambda *a, **k: np.zeros(61)"),
        imports=("builtins",),
    ),
    Hostile(
        "a thread that keeps changing its answers",
        program(
            "import threading\nstate = [1.0]\nthreading.Thread(target=lambda: [state.append(0) for _ in iter(int, 1)], "
            "daemon=True).start()"
        ),
        honest=HONEST,
        imports=("threading",),
    ),
    # reading outside
    Hostile(
        "reads the secret, the repository, ../shared and home, and raises them",
        program(
            "import os\nfound = []\nfor path in ['{SECRET_FILE}', '{REPO}/pyproject.toml', '{SHARED}/STYLE.md', "
            "os.path.expanduser('~/.bashrc'), '/etc/shadow', '/root/.bash_history']:\n"
            "    try:\n        found.append(open(path).read()[:200])\n    except OSError:\n        pass\n"
            "if found:\n    raise RuntimeError(found)"
        ),
        honest=HONEST,
        imports=("os",),
    ),
    Hostile(
        "reads every process's environment for the API key",
        program(
            "import os\nfor pid in [p for p in os.listdir('/proc') if p.isdigit()] + [str(os.getppid()), '1']:\n"
            "    try:\n        env = open(f'/proc/{pid}/environ', 'rb').read()\n    except OSError:\n        continue\n"
            "    if b'{SECRET}' in env:\n        raise RuntimeError(env)\n"
            "if '{SECRET}' in str(os.environ):\n    raise RuntimeError(os.environ)"
        ),
        honest=HONEST,
        imports=("os",),
    ),
    Hostile(
        "re-exported os from numpy reads the secret",
        program("raise RuntimeError(np.os.popen('cat {SECRET_FILE}').read() or 'nothing')", "", ""),
        fails_as=("exception",),
    ),
    # writing the host
    Hostile(
        "writes the run store",
        program("with open('{STORE}', 'r+b') as db:\n    db.write(b'forged')"),
        fails_as=("exception", "forbidden"),
    ),
    Hostile(
        "leaves files in /tmp and /dev/shm and shared memory",
        program(
            "open('/tmp/{MARK}-file', 'w').write('x')\nopen('/dev/shm/{MARK}-shm', 'w').write('x')",
            "from multiprocessing import shared_memory",
            "SEGMENT = shared_memory.SharedMemory(name='{MARK}-segment', create=True, size=8 << 20)",
        ),
        honest=HONEST,
        imports=("multiprocessing.shared_memory",),
    ),
    Hostile(
        "a shell through ctypes, reached from numpy",
        program(
            "libc = np.ctypeslib.ctypes.CDLL(None)\n"
            "libc.system(b'touch /tmp/{MARK}-shell; cat {SECRET_FILE} > /tmp/{MARK}-copy')"
        ),
        honest=HONEST,
    ),
    Hostile(
        "mounts, unshares, traces and becomes root",
        program(
            "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "assert libc.mount(b'/', b'/tmp', None, 4096, None) != 0\nassert libc.unshare(0x10000000) != 0\n"
            "assert libc.ptrace(16, os.getppid(), 0, 0) != 0\n"
            "try:\n    os.setuid(0)\n    open('/etc/{MARK}', 'w')\nexcept OSError:\n    pass"
        ),
        honest=HONEST,
        imports=("ctypes", "os"),
    ),
    # the network
    Hostile(
        "connects to a loopback server",
        program("import socket\ns = socket.create_connection(('127.0.0.1', {PORT}), timeout=2)\ns.sendall(b'x')"),
        fails_as=("forbidden",),
        imports=("socket",),
    ),
    Hostile(
        "connects to an abstract Unix socket of the host",
        program("import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect({ABSTRACT})"),
        fails_as=("forbidden", "exception"),
        imports=("socket",),
    ),
    # outliving the evaluation, and other processes
    Hostile(
        "a double-forked, setsid survivor",
        program(
            "import os\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
            "        os.execv('/bin/sleep', ['sleep', '{SURVIVOR}'])\n    os._exit(0)"
        ),
        honest=HONEST,
        imports=("os",),
    ),
    Hostile(
        "ignores every signal and spins",
        program(
            "import signal\nfor s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM):\n"
            "    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    pass"
        ),
        fails_as=("timeout",),
        imports=("signal",),
    ),
    Hostile(
        "kills every process it can",
        program("import os, signal\nos.kill(-1, signal.SIGKILL)"),
        honest=HONEST,
        fails_as=("crash", "exception"),
        imports=("os", "signal"),
    ),
    Hostile(
        "fork bomb",
        program("import os\nwhile True:\n    os.fork()"),
        fails_as=("forbidden", "timeout", "crash"),
        imports=("os",),
    ),
    Hostile("memory bomb", program("a = bytearray(10 ** 11)"), fails_as=("memory",)),
    Hostile(
        "fills its /tmp",
        program("open('/tmp/big', 'wb').write(b'x' * (64 << 20))"),
        fails_as=("output_limit", "exception"),
    ),
    # answers that do not hold up
    Hostile(
        "huge answer", "import numpy as np\n\ndef f(x):\n    return np.zeros(10 ** 7)\n", fails_as=("output_limit",)
    ),
    Hostile("not a number", "import numpy as np\n\ndef f(x):\n    return x * np.nan\n", fails_as=("invalid",)),
    Hostile("infinite", "import numpy as np\n\ndef f(x):\n    return x / 0.0\n", fails_as=("invalid",)),
    Hostile("wrong shape", "import numpy as np\n\ndef f(x):\n    return x[:, None]\n", fails_as=("invalid",)),
    # a complex answer is cast to its real part by the program's own side (numpy): x, scored as x
    Hostile("complex numbers", "import numpy as np\n\ndef f(x):\n    return x + 1j\n", -float(np.mean((X - Y) ** 2))),
    Hostile(
        "an answer that changes every time it is read",
        "import numpy as np\n\nclass Shifty:\n    n = 0\n    def __array__(self, dtype=None, copy=None):\n"
        "        Shifty.n += 1\n        return np.full(61 if Shifty.n > 1 else 5, 1e9)\n\n"
        "def f(x):\n    return Shifty()\n",
        honest=-float(np.mean((np.full(61, 1e9) - Y) ** 2)),  # scored on what it answered, once
    ),
]


results, test_a_hostile_program_fails_or_is_scored_honestly, test_hostile_programs_change_no_other_evaluation = (
    campaign_tests(__name__, PROGRAMS, lambda before, after: before == after == HONEST)
)
