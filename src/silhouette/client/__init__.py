"""The client side: the `silhouette` CLI, the HTTP API client, following jobs and events.
Loads nothing of the server (no models, no moto) unless a command starts a local stack."""
