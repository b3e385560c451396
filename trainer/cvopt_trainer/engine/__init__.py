"""Training engine: ``train.run(args, emit)`` (the worker's train command), validation, EMA, checkpoints."""
