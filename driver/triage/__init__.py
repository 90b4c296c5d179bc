"""What a run keeps of its nodes for triage: each node's journal (exported at a failure, before
a node is crashed or restored, and at the end of the run) and its core dumps."""
