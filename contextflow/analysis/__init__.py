"""Analysis of recorded runs: what-if replay, outcomes for routers, recordings for the replay
provider. It reads the run and trace stores and sits above both."""
