"""One module per DVC stage: a pure core function plus a thin `run` entry point for I/O."""
