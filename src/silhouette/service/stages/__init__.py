"""One module per pipeline stage: read the job's artifacts, call the vision code, write the
stage's artifacts and facts (`run(state, store) -> StageResult`)."""
