"""Background work: the job queue, the worker process, the train and pretrain jobs, model
versions on disk."""
