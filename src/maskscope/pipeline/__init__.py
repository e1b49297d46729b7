"""Running the DAG: params config, the stage runner, MLflow tracking and lineage."""
