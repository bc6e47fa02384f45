"""Ready-made app steps used by the pipelines in dags/ (code review, repository Q&A, release notes)."""
