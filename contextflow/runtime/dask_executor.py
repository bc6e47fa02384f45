"""Run a pipeline's work on a Dask cluster (``distributed``), keeping every policy local.

Only the executor changes: the scheduler still orders nodes, reserves budget before each model
call, retries, caches, checkpoints and emits events in the driver process, so a run behaves the
same on one machine or many, and budget caps hold however many workers call models (every
reservation is made in the one scheduler before the work is shipped). A worker that dies mid-task
is handled by Dask, which reruns the task elsewhere; finished nodes are already checkpointed.

Node ``resources`` hints map to Dask worker resources (``gpus: 1`` -> ``GPU=1``). A hint the
cluster cannot satisfy is dropped with a note in :attr:`DaskExecutor.dropped_resources` rather
than leaving the task unschedulable forever.

A Ray executor would implement the same two methods (``submit``, ``aclose``); nothing in the
scheduler refers to Dask.
"""

from __future__ import annotations

import asyncio
from typing import Any

from contextflow.runtime.executor import Work, run_work_blocking

RESOURCE_NAMES = {"gpus": "GPU", "gpu": "GPU", "cpus": "CPU", "memory_gb": "MEMORY_GB"}


def _run_on_worker(work: Work) -> Any:
    import contextflow  # noqa: F401  (offline settings in the worker process)

    return run_work_blocking(work)


class DaskExecutor:
    """An :class:`~contextflow.runtime.executor.Executor` backed by ``distributed.Client``.

    With no ``address`` it starts a LocalCluster bound to 127.0.0.1 (processes, no dashboard)
    and closes it on :meth:`aclose`. Model calls mostly wait on the network, so each worker runs
    several tasks at once (``threads_per_worker``).
    """

    def __init__(self, address: str | None = None, *, n_workers: int = 2, threads_per_worker: int = 8,
                 worker_resources: dict[str, float] | None = None) -> None:
        self.address = address
        self.n_workers = n_workers
        self.threads_per_worker = threads_per_worker
        self.worker_resources = worker_resources
        self.dropped_resources: list[tuple[str, dict[str, float]]] = []
        self._client: Any = None
        self._cluster: Any = None
        self._available: dict[str, float] = {}
        self._start_lock = asyncio.Lock()

    async def start(self) -> "DaskExecutor":
        async with self._start_lock:
            if self._client is not None:
                return self
            from distributed import Client, LocalCluster

            if self.address is None:
                self._cluster = await LocalCluster(
                    n_workers=self.n_workers, threads_per_worker=self.threads_per_worker, processes=True,
                    host="127.0.0.1", protocol="tcp", dashboard_address=None, asynchronous=True,
                    resources=self.worker_resources,
                )
                self._client = await Client(self._cluster, asynchronous=True)
            else:
                self._client = await Client(self.address, asynchronous=True)
            self._available = self._cluster_resources()
        return self

    def _cluster_resources(self) -> dict[str, float]:
        info = self._client.scheduler_info()
        best: dict[str, float] = {}
        for worker in info.get("workers", {}).values():
            for name, amount in (worker.get("resources") or {}).items():
                best[name] = max(best.get(name, 0.0), float(amount))
        return best

    @property
    def client(self) -> Any:
        return self._client

    def _resources_for(self, work: Work) -> dict[str, float] | None:
        wanted = {RESOURCE_NAMES.get(k, k.upper()): float(v) for k, v in work.resources.items() if v}
        if not wanted:
            return None
        if all(self._available.get(name, 0.0) >= amount for name, amount in wanted.items()):
            return wanted
        self.dropped_resources.append((work.node_id, wanted))
        return None

    async def submit(self, work: Work) -> Any:
        if self._client is None:
            await self.start()
        future = self._client.submit(_run_on_worker, work, pure=False, resources=self._resources_for(work))
        try:
            return await future
        except asyncio.CancelledError:
            await future.cancel()
            raise

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._cluster is not None:
            await self._cluster.close()
            self._cluster = None
