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
        threads: entry.resources.cpus
        resources:
            mem_mb=entry.resources.mem_mb,
        shell:
            entry.command(workers="{threads}")
