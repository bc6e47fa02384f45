"""Run a pipeline's work on a Dask cluster (``distributed``), keeping every policy local.

Only the executor changes: the scheduler still orders nodes, reserves budget before each model
call, retries, caches, checkpoints and emits events in the driver process, so a run behaves the
same on one machine or many, and budget caps hold however many workers call models (every
reservation is made in the one scheduler before the work is shipped). A worker that dies mid-task
is handled by Dask, which reruns the task elsewhere; finished nodes are already checkpointed.

Node ``resources`` hints map to Dask worker resources (``gpus: 1`` -> ``GPU=1``). A hint the
cluster cannot satisfy is dropped with a note in :attr:`DaskExecutor.dropped_resources` rather
than leaving the task unschedulable forever.

What a worker runs is :func:`contextflow.runtime.remote.run_remote` (providers registered, the
driver's model declarations, portable errors). A Ray executor would wrap that same function in
the same two methods (``submit``, ``aclose``); nothing in the scheduler refers to Dask.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from contextflow.core.errors import UserError
from contextflow.runtime.executor import Work
from contextflow.runtime.remote import declarations_for, run_remote

RESOURCE_NAMES = {"gpus": "GPU", "gpu": "GPU", "cpus": "CPU", "memory_gb": "MEMORY_GB"}
CONNECT_TIMEOUT_S = 15.0
RESOURCE_RECHECK_S = 5.0  # how often an unmet resource hint asks the scheduler for new workers


def _check_address(address: str) -> str:
    from urllib.parse import urlparse

    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    try:
        port = parsed.port
    except ValueError:
        port = None
    if parsed.scheme not in ("tcp", "tls") or not parsed.hostname or not port:
        raise UserError(
            f"'{address}' is not a Dask scheduler address",
            hint="use tcp://HOST:PORT (e.g. tcp://127.0.0.1:8786), or leave --address out for a local cluster",
        )
    return f"{parsed.scheme}://{parsed.hostname}:{port}"


class DaskExecutor:
    """An :class:`~contextflow.runtime.executor.Executor` backed by ``distributed.Client``.

    With no ``address`` it starts a LocalCluster bound to 127.0.0.1 (processes, no dashboard)
    and closes it on :meth:`aclose`. Model calls mostly wait on the network, so each worker runs
    several tasks at once (``threads_per_worker``).
    """

    def __init__(self, address: str | None = None, *, n_workers: int = 2, threads_per_worker: int = 8,
                 worker_resources: dict[str, float] | None = None) -> None:
        self.address = _check_address(address) if address is not None else None
        self.n_workers = n_workers
        self.threads_per_worker = threads_per_worker
        self.worker_resources = worker_resources
        self.dropped_resources: list[tuple[str, dict[str, float]]] = []
        self._client: Any = None
        self._cluster: Any = None
        self._available: dict[str, float] = {}
        self._looked_at = 0.0
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
                try:
                    self._client = await Client(self.address, asynchronous=True, timeout=CONNECT_TIMEOUT_S)
                except (OSError, asyncio.TimeoutError) as exc:
                    raise UserError(
                        f"could not reach the Dask scheduler at {self.address}: {exc}",
                        hint="start one with 'dask scheduler' (and workers with 'dask worker ADDRESS'), "
                             "or leave --address out for a local cluster",
                    ) from None
            await self._refresh_resources()
        return self

    async def _refresh_resources(self) -> None:
        # Ask the scheduler: the client's cached scheduler_info() can predate the workers.
        info = await self._client.scheduler.identity()
        best: dict[str, float] = {}
        for worker in info.get("workers", {}).values():
            for name, amount in (worker.get("resources") or {}).items():
                best[name] = max(best.get(name, 0.0), float(amount))
        self._available = best
        self._looked_at = time.monotonic()

    @property
    def client(self) -> Any:
        return self._client

    async def _resources_for(self, work: Work) -> dict[str, float] | None:
        wanted = {RESOURCE_NAMES.get(k, k.upper()): float(v) for k, v in work.resources.items() if v}
        if not wanted:
            return None
        if not self._satisfies(wanted) and time.monotonic() - self._looked_at > RESOURCE_RECHECK_S:
            await self._refresh_resources()  # workers may have joined since the last look
        if self._satisfies(wanted):
            return wanted
        self.dropped_resources.append((work.node_id, wanted))
        return None

    def _satisfies(self, wanted: dict[str, float]) -> bool:
        return all(self._available.get(name, 0.0) >= amount for name, amount in wanted.items())

    async def submit(self, work: Work) -> Any:
        if self._client is None:
            await self.start()
        resources = await self._resources_for(work)
        future = self._client.submit(run_remote, work, declarations_for(work), pure=False, resources=resources)
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
