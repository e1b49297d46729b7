# One rule per registry stage. `params.slice` holds the values of the keys the stage reads, so
# Snakemake's params rerun-trigger reruns exactly the stages whose keys changed, as DVC does.
# A sweep (matrix) stage becomes one rule with a wildcard per axis.
import json

from pipelines.stages import fill


def params_slice_of(entry):
    def slice_json(wildcards):
        keys = [fill(key, dict(wildcards)) for key in entry.params]
        return json.dumps(params_slice(PARAMS, keys), sort_keys=True)

    return slice_json


def command_of(entry):
    return lambda wildcards: fill(entry.command(), dict(wildcards))


for entry in STAGES:

    rule:
        name:
            entry.name
        input:
            **{name: input_spec(path) for name, path in entry.deps.items()},
            code=entry.code_paths,
        output:
            **{name: output_spec(out) for name, out in entry.outs.items()},
        params:
            slice=params_slice_of(entry),
            command=command_of(entry),
        wildcard_constraints:
            **{axis: "|".join(map(re.escape, values)) for axis, values in entry.matrix.items()},
        threads: entry.resources.cpus
        resources:
            mem_mb=entry.resources.mem_mb,
            runtime=entry.resources.runtime,
        # The shell directive is evaluated when the job runs, after the loop has moved on: it must
        # not refer to `entry`, so the command travels in params. It is DVC's command, with the
        # registry's worker count: torch's reductions depend on the thread count, and both tools
        # must write the same bytes.
        shell:
            "{params.command}"
