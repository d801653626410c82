"""Infrastructure the other layers share: image decoding with limits, the content-addressed artifact store
and its event log, the run's checkpointer, the HTTP client, secrets handling, and the generic registry."""
