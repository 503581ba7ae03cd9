"""What is kept on disk (and in Redis): the raw archive, harvest state, locks, file failures."""
