# One rule per registry stage. `params.slice` holds the values of the keys the stage reads, so
# Snakemake's params rerun-trigger reruns exactly the stages whose keys changed, as DVC does.
import json

for entry in STAGES:

    rule:
        name:
            entry.name
        input:
            **entry.deps,
            code=entry.code_paths,
        output:
            **{name: output_spec(out) for name, out in entry.outs.items()},
        params:
            slice=json.dumps(params_slice(PARAMS, list(entry.params)), sort_keys=True),
            command=entry.base_command(),
        threads: entry.resources.cpus
        resources:
            mem_mb=entry.resources.mem_mb,
        # The shell directive is evaluated when the job runs, after the loop has moved on: it must
        # not refer to `entry`, so the command travels in params.
        shell:
            "{params.command} --workers {threads}"
