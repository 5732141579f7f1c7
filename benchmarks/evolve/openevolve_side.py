"""The OpenEvolve side of bench_engine.py; runs inside OpenEvolve's own environment.

argv[1]: JSON with api_base, model, iterations, workers, temperature, max_tokens, program and
evaluator (file paths). Prints one JSON line: best score, evaluations, seconds.
"""

import json
import logging
import sys
import time

from openevolve import run_evolution
from openevolve.config import Config, LLMModelConfig


def main() -> None:
    args = json.loads(sys.argv[1])
    config = Config()
    config.llm.api_base = args["api_base"]
    config.llm.models = [LLMModelConfig(name=args["model"], api_base=args["api_base"], api_key="none", weight=1.0)]
    config.llm.temperature = args["temperature"]
    config.llm.max_tokens = args["max_tokens"]
    config.llm.timeout = 120
    config.llm.retries = 1
    config.max_iterations = args["iterations"]
    config.checkpoint_interval = 10**6
    config.diff_based_evolution = False  # whole-program rewrites, as garagelab's LLM proposer asks
    config.database.num_islands = 2
    config.evaluator.parallel_evaluations = args["workers"]
    config.evaluator.timeout = 10
    config.evaluator.cascade_evaluation = False
    config.log_level = "WARNING"
    logging.disable(logging.WARNING)
    start = time.perf_counter()
    result = run_evolution(args["program"], args["evaluator"], config=config, iterations=args["iterations"])
    seconds = time.perf_counter() - start
    print(json.dumps({"best": result.best_score, "evaluations": args["iterations"] + 1, "seconds": seconds}))


if __name__ == "__main__":
    main()
