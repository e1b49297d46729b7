# Thin entry point: every rule comes from the stage registry (pipelines/stages.py) through
# workflow/rules/, so Snakemake and DVC run the same DAG. Run with
#   snakemake --profile workflow/profiles/default
configfile: "params.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/stages.smk"


rule all:
    default_target: True
    input:
        ALL_OUTPUTS,
