"""One thin module per DAG stage: `run(ctx) -> metrics`, called by the stage runner only."""
