"""Built-in tasks (other systems register theirs: cogsearch, kernels)."""

from garagelab.evolve.tasks.fit_points import FIT_POINTS

TASKS = {FIT_POINTS.name: FIT_POINTS}
