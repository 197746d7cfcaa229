"""The AWS side: what the Lambda handlers in functions/*/app.py run (the pipeline's stages,
finalize, the starter, the sweeper, the HTTP API) and the job record, storage and events they
share."""
