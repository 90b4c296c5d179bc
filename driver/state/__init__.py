"""State that outlives a run: the persistent cluster and its record, the processes a
state directory owns, run directories, the cached settled snapshots and their lock."""
