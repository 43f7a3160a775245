"""Collection and evaluation over Ray: ``tground collect ... --ray auto|ADDRESS --workers K``.

The K workers are Ray actors, one process and one CPU each, and every one runs its own native
batched env. The requested seeds are cut into contiguous shards, and a worker collects a shard
with the same :func:`~training_ground.data.collect.collect` a local run uses, into its own
crash-safe file beside the output (``OUT.shards/seeds_A-B.hdf5``). When every shard is done,
:func:`~training_ground.data.dataset.merge_datasets` writes OUT with exactly the requested seeds,
demos in seed order: the file one local run of the same seeds would have written.

Fault tolerance is Ray's, on top of the journal every shard writes through. A worker process
that dies (killed, out of memory, its machine gone) is restarted by Ray (``max_restarts``) on a
node with a free CPU, and the shard it was collecting is retried there (``max_task_retries``):
the retry opens the same shard file, merges the journal the dead worker left and collects only
the seeds still missing, so a lost worker costs only the episodes it had in flight. A run that
stops (Ctrl-C, or a worker lost more often than ``retries``) keeps its shards; rerunning the
same command resumes them.

Every node must see OUT's folder at the same path (a shared filesystem such as NFS) and have the
same training-ground installed: shards of another version do not merge.

Evaluation fans out through :func:`run_over_seeds`: any picklable ``run_seeds(seeds) -> [one
result per seed]`` on K workers, chunk by chunk, results back in seed order.

Nothing here imports Ray at module import, and ``tground collect`` without ``--ray`` never
imports this module.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import re
import shutil
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from ..agents import evaluate
from ..agents.policies import load_policy
from ..errors import InputError, SetupError
from ..physics.rendering import process_cpu_seconds
from ..progress import progress_bar
from .collect import (CollectOptions, CollectResult, FieldReport, collect, make_env, plan_collection,
                      terminate_as_interrupt)
from .dataset import (DatasetError, check_output_location, check_resumable, contiguous_runs, finish_journal,
                      journal_seeds, merge_datasets, stored_seeds)

RAY_MISSING = ('the --ray options need Ray, which is the "dist" extra: pip install ".[dist]" (from the project\'s '
               'folder)')
SHARD_NAME = re.compile(r"seeds_(\d+)-(\d+)\.hdf5")
START_TIMEOUT_S = 300.0  # for the workers to start; longer means the cluster lacks free CPUs


# ---------------------------------------------------------------------------------------------- Ray
def import_ray():
    try:
        import ray
    except ImportError:
        raise SetupError(RAY_MISSING) from None
    return ray


def connect(address: str = "auto"):
    """Ray, connected. ``auto``: the cluster this machine belongs to (``RAY_ADDRESS``, or one started
    here with ``ray start``), else a new local one with all its cores. Otherwise ``HOST:PORT`` of a
    cluster's head node (``ray://HOST:10001`` through Ray Client). An already-connected Ray is kept."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    # A Ray that this call starts would run its workers at niceness 15 (below the driver). Here the
    # workers are the work: they get the niceness this command has, as a local collect would.
    os.environ.setdefault("RAY_worker_niceness", "0")
    try:
        ray.init(address=None if address == "auto" else address, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
    except (ConnectionError, ValueError) as error:
        raise SetupError(f"--ray {address}: cannot connect to a Ray cluster ({error}). Start one with "
                           f"`ray start --head` and pass its address, or use --ray auto") from None
    return ray


class _Worker:
    """One Ray worker: a process on one CPU that collects shards and runs episode functions."""

    def __init__(self):
        import training_ground  # noqa: F401  (registers the Gymnasium ids in this process)

    def describe(self) -> dict:
        import ray

        return {"host": socket.gethostname(), "pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()}

    def warm_up(self, options: CollectOptions) -> None:
        """Make a one-robot env and the policy once, so first-use costs fall before any clock starts."""
        plan = plan_collection(options)
        env = make_env(plan, options, 1)
        try:
            load_policy(options.policy, env)
            env.reset(seed=0)
        finally:
            env.close()

    def collect_shard(self, options: CollectOptions) -> dict:
        return _collect_shard(options)

    def call(self, function, *args):
        return function(*args)


class WorkerPool:
    """K Ray workers (actors of one CPU each) that Ray restarts when their process dies.

    ``run`` hands each job to the next free worker; a job whose worker died is retried by Ray on
    the restarted worker, up to ``retries`` times per worker.
    """

    def __init__(self, ray, workers: int, retries: int = 3):
        if workers < 1:
            raise InputError(f"--workers must be >= 1, got {workers}")
        if retries < 0:
            raise InputError(f"--retries must be >= 0, got {retries}")
        cpus = ray.cluster_resources().get("CPU", 0)
        if workers > cpus:
            raise InputError(f"--workers {workers}: the Ray cluster has {cpus:g} CPUs and each worker takes one; "
                             f"add nodes (ray start --address HEAD:6379) or use fewer workers")
        self.ray = ray
        actor = ray.remote(num_cpus=1, max_restarts=retries, max_task_retries=retries)(_Worker)
        self.actors = [actor.remote() for _ in range(workers)]
        try:
            self.workers = ray.get([a.describe.remote() for a in self.actors], timeout=START_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            self.close()
            raise SetupError(f"the {workers} Ray workers did not start within {START_TIMEOUT_S:.0f} s; the "
                               f"cluster has {cpus:g} CPUs, {ray.available_resources().get('CPU', 0):g} free") from None

    @property
    def nodes(self) -> int:
        return len({worker["node"] for worker in self.workers})

    def run(self, method: str, jobs: list[tuple], on_wait=None, wait_s: float = 2.0, actors=None,
            on_result=None) -> list:
        """``method(*job)`` for every job on the next free worker; results in job order.

        ``on_result(index, result)`` is called as each job finishes and ``on_wait()`` every ``wait_s``
        seconds while jobs run (progress).
        """
        idle = list(actors if actors is not None else self.actors)
        queue, running, results = deque(enumerate(jobs)), {}, [None] * len(jobs)
        while queue or running:
            while queue and idle:
                index, job = queue.popleft()
                worker = idle.pop(0)
                running[getattr(worker, method).remote(*job)] = (index, worker)
            ready, _ = self.ray.wait(list(running), num_returns=1, timeout=wait_s)
            for ref in ready:
                index, worker = running.pop(ref)
                results[index] = self._get(ref)
                idle.append(worker)
                if on_result is not None:
                    on_result(index, results[index])
            if on_wait is not None:
                on_wait()
        return results

    def _get(self, ref):
        ray = self.ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as error:
            # The job's own error (a bad policy, a damaged shard): the same on any worker, so not retried.
            cause = getattr(error, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None
            raise RuntimeError(f"a Ray worker failed: {error}") from None
        except ray.exceptions.RayActorError as error:
            raise SetupError(f"a Ray worker was lost more often than --retries allows: {error}") from None

    def close(self) -> None:
        for actor in self.actors:
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.actors = []


# ---------------------------------------------------------------------------------------------- shards
@dataclass(frozen=True)
class Shard:
    """A contiguous block of seeds ``first..last`` and the file one worker collects it into."""

    path: Path
    first: int
    last: int

    @property
    def seeds(self) -> range:
        return range(self.first, self.last + 1)


def shards_dir(out) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".shards")


def shard_at(folder: Path, first: int, last: int) -> Shard:
    return Shard(folder / f"seeds_{first}-{last}.hdf5", first, last)


def existing_shards(folder: Path) -> list[Shard]:
    if not folder.is_dir():
        return []
    found = []
    for entry in folder.iterdir():
        match = SHARD_NAME.fullmatch(entry.name)
        if match:
            found.append(shard_at(folder, int(match[1]), int(match[2])))
    return sorted(found, key=lambda shard: shard.first)


def split_seeds(seeds: list[int], parts: int) -> list[tuple[int, int]]:
    """Sorted seeds -> at least ``parts`` contiguous runs ``(first, last)`` of near-equal size (more where
    the seeds have gaps: a shard never spans a seed that is not its to collect)."""
    if not seeds:
        return []
    parts = max(1, min(parts, len(seeds)))
    size, extra = divmod(len(seeds), parts)
    runs, start = [], 0
    for part in range(parts):
        block = seeds[start:start + size + (part < extra)]
        start += len(block)
        runs += contiguous_runs(block)
    return runs


def plan_shards(out: Path, wanted: range, done: set[int], workers: int) -> tuple[list[Shard], list[Shard]]:
    """The shards to collect (unfinished ones of an earlier run first, then new ones over the seeds no
    shard covers) and the shards already merged into OUT (left over when a run stopped right after
    merging), which are to be removed."""
    folder = shards_dir(out)
    resume, redundant = [], []
    for shard in existing_shards(folder):
        seeds = set(shard.seeds)
        if not seeds <= set(wanted):
            raise DatasetError(f"{shard.path} holds seeds {shard.first}..{shard.last}, outside this run's "
                               f"{wanted.start}..{wanted.stop - 1}: it belongs to another command. Rerun that "
                               f"command, merge it with `tground dataset merge`, or move it away")
        if seeds <= done:
            redundant.append(shard)
        elif seeds & done:
            raise DatasetError(f"{shard.path} covers seeds that {out} already holds; move one of them away")
        else:
            resume.append(shard)
    covered = {seed for shard in resume for seed in shard.seeds}
    fresh = [seed for seed in wanted if seed not in done and seed not in covered]
    return resume + [shard_at(folder, first, last) for first, last in split_seeds(fresh, workers)], redundant


def _collect_shard(options: CollectOptions) -> dict:
    """What a worker does with a shard (``options.out`` is the shard): collect, and say what it did."""
    folder = Path(options.out).parent
    if not folder.is_dir():
        raise DatasetError(f"{folder} does not exist on {socket.gethostname()}: every Ray node must see --out's "
                           f"folder at the same path (a shared filesystem)")
    cpu_start = process_cpu_seconds()
    result = collect(options)
    if result.interrupted:  # SIGINT reached the worker; its finished episodes are in the shard
        raise SetupError(f"the worker collecting {options.out} was interrupted; rerun to resume")
    stats = result.stats
    return {"shard": options.out, "host": socket.gethostname(), "pid": os.getpid(), "resumed": result.resumed,
            "steps": list(stats.steps) if stats else [], "successes": list(stats.successes) if stats else [],
            "filtered": stats.filtered if stats else 0, "robots": stats.robots if stats else 0,
            "wall_s": stats.wall() if stats else 0.0, "cpu_s": process_cpu_seconds() - cpu_start}


# ---------------------------------------------------------------------------------------------- collection
@dataclass
class DistributedCollectResult(CollectResult):
    """A Ray collection: the local result's fields, plus what each shard's worker reported."""

    shards: list[dict] = field(default_factory=list)
    workers: list[dict] = field(default_factory=list)  # host, pid and node of each worker as it started
    merge_s: float = 0.0


def collect_distributed(options: CollectOptions, address: str = "auto", workers: int = 2, retries: int = 3,
                        measure_scaling: bool = False, ray=None) -> DistributedCollectResult:
    """``tground collect ... --ray ADDRESS --workers K``: see the module docstring.

    ``measure_scaling`` first times one worker alone on one worker's share of the seeds (into a
    scratch shard, then discarded), so the report gives the scaling efficiency of the K-worker run.
    """
    plan = plan_collection(options)
    if workers < 1:
        raise InputError(f"--workers must be >= 1, got {workers}")
    out = Path(options.out).absolute()  # workers do not share the driver's working directory
    check_output_location(out)
    if options.policy.endswith(".zip"):
        options = dataclasses.replace(options, policy=str(Path(options.policy).absolute()))
    if out.exists():
        check_resumable(out, plan.env_args, options.policy)
        finish_journal(out)  # a killed local run's finished episodes
    done = stored_seeds(out) if out.exists() else set()
    wanted = range(options.seed, options.seed + options.episodes)
    shards, redundant = plan_shards(out, wanted, done, workers)
    for shard in redundant:
        _remove_shard(shard)
    if not shards:
        _remove_folder(shards_dir(out))
        return DistributedCollectResult(None, False, len(done), f"{out} already holds all {options.episodes} "
                                        f"requested episodes (seeds {wanted.start}..{wanted.stop - 1}); nothing to do",
                                        resumed=options.episodes)
    for shard in shards:  # a damaged or foreign shard fails here, before any worker starts
        if shard.path.exists():
            check_resumable(shard.path, plan.env_args, options.policy)

    def shard_options(shard: Shard) -> CollectOptions:
        return dataclasses.replace(options, out=str(shard.path), seed=shard.first, episodes=len(shard.seeds),
                                   report=None, progress=False, stop_on_sigterm=False)

    ray = ray or connect(address)
    pool = WorkerPool(ray, workers, retries)
    interrupted, one_worker, missing = False, (None, None), 0
    results: list[dict] = []
    try:
        shards_dir(out).mkdir(exist_ok=True)
        ray.get([actor.warm_up.remote(options) for actor in pool.actors])
        if measure_scaling:
            one_worker = _one_worker_rate(pool, shards, out, shard_options)
        # What this run collects (some may be finished by a worker that is lost afterwards: they count too).
        missing = sum(len(shard.seeds) for shard in shards) - sum(_done_in(shard) for shard in shards)
        bar = progress_bar(missing, f"collect {plan.task_id.split('/')[-1]} on {workers} Ray workers",
                           options.progress, unit="ep", dynamic_ncols=True)
        progress = _ShardProgress(shards, bar) if not bar.disable else None
        started = time.perf_counter()
        try:
            with terminate_as_interrupt():
                results = pool.run("collect_shard", [(shard_options(shard),) for shard in shards],
                                   on_wait=progress)
        except KeyboardInterrupt:
            interrupted = True
        wall = time.perf_counter() - started
        if progress is not None:
            progress()
        bar.close()
    finally:
        pool.close()
        _remove_folder(shards_dir(out))  # only if no shard was written: those are kept to resume
    if interrupted:
        return DistributedCollectResult(None, True, len(done), f"interrupted: finished episodes are kept in "
                                        f"{shards_dir(out)}; rerun the same command to collect the rest and merge",
                                        workers=pool.workers)

    merge_started = time.perf_counter()
    inputs = ([out] if out.exists() else []) + [shard.path for shard in shards]
    merged = merge_datasets(inputs, out, seeds=set(wanted) | done)
    for shard in shards:
        _remove_shard(shard)
    _remove_folder(shards_dir(out))
    merge_s = time.perf_counter() - merge_started

    steps = [steps for result in results for steps in result["steps"]]
    report = None
    if steps:
        nodes = [node for node in ray.nodes() if node.get("Alive")]
        cluster_cores = int(sum(node.get("Resources", {}).get("CPU", 0) for node in nodes))
        report = FieldReport.from_totals(
            plan.task_id, options.backend, str(out), robots=min(options.robots, max(len(s.seeds) for s in shards))
            * workers, steps=steps, successes=[ok for result in results for ok in result["successes"]],
            wall_time_s=wall, cpu_time_s=sum(result["cpu_s"] for result in results),
            control_dt=plan.config.control_dt, machine_cores=max(1, round(cluster_cores / max(len(nodes), 1))),
            workers=workers, nodes=pool.nodes, cluster_cores=cluster_cores, run_episodes=missing,
            one_worker_episodes_per_day=one_worker[0], one_worker_cores_used=one_worker[1])
    retried = [result for result in results if result["resumed"]]
    message = (f"{len(shards)} shards from {workers} workers merged into {out} in {merge_s:.1f} s"
               + (f"; {len(retried)} shards resumed episodes an earlier worker had finished" if retried else ""))
    return DistributedCollectResult(report, False, merged.episodes, message, None, options.episodes - missing,
                                    shards=results,
                                    workers=pool.workers, merge_s=merge_s)


def _one_worker_rate(pool: WorkerPool, shards: list[Shard], out: Path, shard_options) -> tuple[float, float]:
    """Episodes a day that one worker alone collects on one worker's share of the seeds (a scratch
    shard, removed after), for the scaling efficiency; and the CPU cores it got meanwhile."""
    share = math.ceil(sum(len(shard.seeds) for shard in shards) / len(pool.actors))
    first = shards[0].first
    scratch = out.with_name(out.name + ".scaling")
    _remove_folder(scratch, everything=True)
    scratch.mkdir()
    try:
        shard = shard_at(scratch, first, first + share - 1)
        started = time.perf_counter()
        (result,) = pool.run("collect_shard", [(shard_options(shard),)], actors=pool.actors[:1])
        wall = time.perf_counter() - started
        return share * 86_400.0 / wall, result["cpu_s"] / wall
    finally:
        _remove_folder(scratch, everything=True)


def _done_in(shard: Shard) -> int:
    seeds = journal_seeds(shard.path)  # the journal first: an entry leaves it only once the file holds it
    if shard.path.exists():
        seeds |= stored_seeds(shard.path)
    return len(seeds)


class _ShardProgress:
    """Advances the driver's bar by the episodes the shards' journals and files hold."""

    def __init__(self, shards: list[Shard], bar):
        self.shards, self.bar = shards, bar
        self.start = sum(_done_in(shard) for shard in shards)

    def __call__(self) -> None:
        try:
            done = sum(_done_in(shard) for shard in self.shards) - self.start
        except (DatasetError, OSError):
            return  # a file caught mid-rename; the next poll reads it
        self.bar.update(max(0, done - self.bar.n))


def _remove_shard(shard: Shard) -> None:
    shard.path.unlink(missing_ok=True)
    journal = shard.path.with_name(shard.path.name + ".journal")
    if journal.is_dir():
        shutil.rmtree(journal)


def _remove_folder(folder: Path, everything: bool = False) -> None:
    if everything:
        shutil.rmtree(folder, ignore_errors=True)
        return
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty: files someone else put there stay


# ---------------------------------------------------------------------------------------------- evaluation
def seed_chunks(seeds, workers: int, chunk_size: int | None = None) -> list[list[int]]:
    """``seeds`` in their order, cut into chunks: by default about four per worker, so the load evens
    out and a lost worker costs one chunk."""
    seeds = [int(seed) for seed in seeds]
    if len(set(seeds)) != len(seeds):
        raise ValueError("every seed must appear once")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    size = chunk_size or max(1, math.ceil(len(seeds) / (4 * max(workers, 1))))
    return [seeds[start:start + size] for start in range(0, len(seeds), size)]


def _flatten(chunks: list[list[int]], results: list) -> list:
    flat = []
    for chunk, result in zip(chunks, results):
        result = list(result)
        if len(result) != len(chunk):
            raise ValueError(f"run_seeds returned {len(result)} results for the {len(chunk)} seeds "
                             f"{chunk[0]}..{chunk[-1]}; it must return one per seed")
        flat.extend(result)
    return flat


def run_over_seeds(run_seeds, seeds, *, address: str = "auto", workers: int = 2, chunk_size: int | None = None,
                   retries: int = 3, ray=None) -> list:
    """``run_seeds(chunk) -> [one result per seed of chunk]`` over all ``seeds`` on K Ray workers; the
    results in the order of ``seeds``.

    The seeds are cut into chunks in their given order (:func:`seed_chunks`); a chunk whose worker
    dies is rerun by Ray on the restarted worker. ``run_seeds`` must be picklable (a module-level
    function, or a ``functools.partial`` of one) and importable on every node; it should depend on
    nothing but its seeds, so that a rerun chunk gives the same results.
    """
    (results,) = run_each_over_seeds([run_seeds], seeds, address=address, workers=workers, chunk_size=chunk_size,
                                     retries=retries, ray=ray)
    return results


def run_each_over_seeds(functions, seeds, *, address: str = "auto", workers: int = 2, chunk_size: int | None = None,
                        retries: int = 3, ray=None, on_chunk=None) -> list[list]:
    """:func:`run_over_seeds` for several functions over the same seeds on one pool of workers, their
    chunks interleaved; one list of results per function. ``on_chunk(results)`` follows each finished chunk."""
    chunks = seed_chunks(seeds, workers, chunk_size)
    if not chunks:
        return [[] for _ in functions]
    jobs = [(function, chunk) for function in functions for chunk in chunks]
    ray = ray or connect(address)
    pool = WorkerPool(ray, min(workers, len(jobs)), retries)
    try:
        results = pool.run("call", jobs, on_result=None if on_chunk is None else lambda index, result: on_chunk(result))
    finally:
        pool.close()
    return [_flatten(chunks, results[k * len(chunks):(k + 1) * len(chunks)]) for k in range(len(functions))]


def evaluate_distributed(args, address: str = "auto", workers: int = 2, retries: int = 3, chunk_size=None,
                         ray=None) -> list[dict]:
    """``tground eval ... --ray``: every policy's episodes in chunks on K Ray workers, each chunk a local
    evaluation (``agents.evaluate.evaluate_seeds``); the same summaries, JSON and PNG as ``tground eval``."""
    evaluate.check_args(args)
    specs = args.policy
    # Files are read by the workers, whose working directory is not this one.
    args = dataclasses.replace(args, policy=tuple(str(Path(spec).absolute()) if spec.endswith((".zip", ".pt"))
                                                  else spec for spec in args.policy),
                               names=evaluate.policy_names(args))
    action_mode = evaluate.check_policies(args)  # a bad policy fails here, before any worker starts
    bar = progress_bar(args.episodes * len(args.policy), f"eval on {workers} Ray workers", args.progress, unit="ep")
    try:
        metrics = run_each_over_seeds([functools.partial(evaluate.evaluate_seeds, args, spec) for spec in args.policy],
                                      range(args.seed, args.seed + args.episodes), address=address, workers=workers,
                                      chunk_size=chunk_size, retries=retries, ray=ray,
                                      on_chunk=lambda result: bar.update(len(result)))
    finally:
        bar.close()
    summaries = evaluate.summaries_of(args, metrics)
    for summary, spec in zip(summaries, specs):
        summary["spec"] = spec  # as given, not the absolute path the workers read
    chunks = len(seed_chunks(range(args.seed, args.seed + args.episodes), workers, chunk_size))
    evaluate.write_evaluation(args, action_mode, summaries, f", on {workers} Ray workers",
                              ray={"workers": workers, "chunks_per_policy": chunks})
    return summaries
