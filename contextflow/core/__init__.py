"""The shared vocabulary of every layer: events, results and attempts, model facts, errors, the
state folder and the one SQLite opener. Nothing here imports another contextflow package."""
