"""How people and pipelines use pixloop: the library API, the `pixloop` command line, `pixloop check`, and the
progress lines a run prints."""
