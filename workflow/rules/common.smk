# Shared set-up: import the registry and the package, validate params before any work, and
# open one MLflow parent run per invocation (child runs of the stages attach to it).
import os
import re
import sys

import yaml

sys.path.insert(0, workflow.basedir)
sys.path.insert(0, os.path.join(workflow.basedir, "src"))

from snakemake.utils import validate

from maskscope.pipeline.config import params_slice, validate_params
from maskscope.core.errors import MaskscopeError, ParamsError
from maskscope.pipeline.cluster import check_slurm
from maskscope.pipeline.tracking import PARENT_RUN_ENV, end_parent_run, start_parent_run

# The stages read params.yaml, as DVC runs them: a --config / --configfile override would change the
# plan but not what the stages compute, so it is refused rather than silently ignored. Compared before
# validate(), which fills in schema defaults.
with open(os.path.join(workflow.basedir, "params.yaml")) as handle:
    if config != yaml.safe_load(handle):
        sys.exit(
            "error: snakemake --config/--configfile values differ from params.yaml, and the stages read "
            "params.yaml: edit params.yaml (or run `maskscope preset NAME`) instead of overriding"
        )
validate(config, "../schemas/params.schema.json")
try:
    PARAMS = validate_params(config, "params.yaml")
except ParamsError as error:
    sys.exit(f"error: {error}")
# Imported after the check above: the registry reads params.yaml when imported.
from pipelines.stages import build_stages, fill

# The DAG follows the variants of the params Snakemake was given.
STAGES = build_stages(PARAMS.variants)

ALL_OUTPUTS = [
    fill(out.snakemake_path, item) for stage in STAGES for item in stage.instances() for out in stage.outs.values()
]
# A persistent directory is known to Snakemake by its marker file, so that a rerun keeps its content.
MARKED = {out.path: out.snakemake_path for stage in STAGES for out in stage.outs.values() if out.snakemake_path != out.path}
OWN_PARENT_RUN = None


def output_spec(out):
    if out.snakemake_path != out.path:
        return out.snakemake_path
    return directory(out.path) if out.kind == "dir" else out.path


def input_spec(path):
    return MARKED.get(path, path)


onstart:
    global OWN_PARENT_RUN
    # On a cluster, fail before the parent run and before any job when the scheduler cannot take them.
    if workflow.executor_plugin is not None and workflow.executor_plugin.name == "slurm":
        try:
            check_slurm(getattr(workflow.executor_settings, "status_command", "sacct"))
        except MaskscopeError as error:
            sys.exit(f"error: {error}")
    if PARENT_RUN_ENV not in os.environ:
        OWN_PARENT_RUN = start_parent_run("snakemake", PARAMS.preset)
        if OWN_PARENT_RUN:
            os.environ[PARENT_RUN_ENV] = OWN_PARENT_RUN


onsuccess:
    end_parent_run(OWN_PARENT_RUN, True)


onerror:
    end_parent_run(OWN_PARENT_RUN, False)
