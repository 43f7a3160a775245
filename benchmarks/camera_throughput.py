"""What cameras cost: rendered frames per second per core for a batch, and collection with a head camera beside
state-only collection, in episodes per CPU core per day (``tground bench envs --render-num-envs ... --camera-episodes``).

- *render*: the head camera's RGB-D pictures of a batch of N environments, taken over and over, on the numpy
  engine (its snapshots pictured in render worker processes, one per core) and on pybullet (each env in its own
  client, in this process). Frames per second of wall time, and per CPU core: frames over the CPU seconds of
  this process and its render workers together.
- *collection*: ``tground collect`` of the same seeds with the scripted expert, written to an HDF5 file, once
  state-only and once with the pictures each mode below adds; the report's episodes per CPU core per day counts
  the render workers' CPU too (physics/rendering.py process_cpu_seconds). Both runs on this machine at once, so
  their ratio is what turning the camera on costs here.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from ..data.collect import CollectOptions, collect
from ..envs import make_config, task_spec
from ..physics.rendering import process_cpu_seconds

#: The collection modes compared: label -> task config overrides.
COLLECTION_MODES = {
    "state only": [],
    "head camera RGB at 10 Hz": ["obs_mode=state+rgb", 'cameras=["head"]', "camera_fps=10"],
    "head camera RGB-D every step": ["obs_mode=state+rgbd", 'cameras=["head"]'],
}


def render_row(task_id: str, backend: str, num_envs: int, width: int, height: int, seconds: float,
               workers: int) -> dict:
    """Frames per second, of wall time and per CPU core, of the head camera's RGB-D pictures of ``num_envs`` envs."""
    spec = task_spec(task_id)
    workers = min(workers, num_envs)  # a worker more than envs would idle
    config = make_config(spec.config_class, {"obs_mode": "rgbd", "cameras": ["head"], "camera_width": width,
                                             "camera_height": height, "render_workers": workers})
    task = spec.task_class(backend=backend, num_envs=num_envs, config=config)
    try:
        views = task.camera_observations.views
        task.observation()  # the first pictures: the render workers start and build their viewers
        frames, cpu_start, start = 0, process_cpu_seconds(), time.perf_counter()
        while time.perf_counter() - start < seconds:
            task.engine.render_cameras(views, width, height)
            frames += num_envs * len(views)
        wall, cpu = time.perf_counter() - start, process_cpu_seconds() - cpu_start
    finally:
        task.close()
    return {"task": task_id, "backend": backend, "num_envs": num_envs, "width": width, "height": height,
            "render_workers": workers if backend == "numpy" else 0,
            "frames": frames, "wall_s": wall, "cpu_s": cpu, "frames_per_s": frames / wall,
            "frames_per_core_s": frames / max(cpu, 1e-9), "cores_used": cpu / wall}


def render_rows(task_id: str, backends, sizes, width: int, height: int, seconds: float, workers: int,
                repeats: int, pybullet_max: int, progress) -> list[dict]:
    """:func:`render_row` for each backend and batch size (pybullet up to ``pybullet_max``), ``repeats`` times with the
    backends interleaved: the median measurement, with every measurement's frames per core in ``runs``."""
    points = [(backend, n) for n in sizes for backend in backends if backend == "numpy" or n <= pybullet_max]
    runs: dict = {point: [] for point in points}
    for _ in range(max(1, repeats)):
        for point in points:
            runs[point].append(render_row(task_id, point[0], point[1], width, height, seconds, workers))
            progress.update()
    rows = []
    for point, measured in runs.items():
        measured = sorted(measured, key=lambda row: row["frames_per_core_s"])
        rows.append({**measured[len(measured) // 2], "runs": [row["frames_per_core_s"] for row in measured]})
    return rows


def collection_rows(task_id: str, episodes: int, robots: int, overrides=()) -> list[dict]:
    """One row per :data:`COLLECTION_MODES` entry: the collection report's rates and the file's size per episode."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="tground_camera_bench_") as folder:
        for label, mode in COLLECTION_MODES.items():
            out = Path(folder) / f"{len(rows)}.hdf5"
            result = collect(CollectOptions(task=task_id, episodes=episodes, out=str(out), robots=robots,
                                            overrides=[*overrides, *mode], progress=False,
                                            report=str(Path(folder) / f"{len(rows)}.json")))
            report = result.report
            rows.append({"mode": label, "overrides": mode, "episodes": report.episodes,
                         "success_rate": report.success_rate, "wall_s": report.wall_time_s,
                         "cpu_s": report.cpu_time_s, "cores_used": report.cpu_cores_used,
                         "mean_episode_steps": report.mean_episode_steps,
                         "episodes_per_core_day": report.episodes_per_core_day,
                         "mib_per_episode": out.stat().st_size / 2**20 / report.episodes})
    state = rows[0]["episodes_per_core_day"]
    for row in rows:
        row["over_state_only"] = row["episodes_per_core_day"] / state
    return rows


def print_rows(render: list[dict], collection: list[dict]) -> None:
    for row in render:
        print(f"render {row['task'].split('/')[-1]} {row['backend']:<8} N={row['num_envs']:<5} "
              f"{row['width']}x{row['height']} RGB-D head camera: {row['frames_per_s']:8.0f} frames/s, "
              f"{row['frames_per_core_s']:6.0f} frames/s per core ({row['cores_used']:.2f} cores, "
              f"{row['render_workers']} render workers)"
              + (f" (spread {min(row['runs']):.0f}-{max(row['runs']):.0f})" if len(row.get("runs", [])) > 1 else ""))
    for row in collection:
        print(f"collect {row['mode']:<30} {row['episodes_per_core_day']:>9,.0f} episodes/core/day "
              f"({row['over_state_only']:.2f} of state-only), {row['mib_per_episode']:.2f} MiB/episode, "
              f"success {row['success_rate']:.0%}")


def plot_rows(axes, render: list[dict], collection: list[dict]) -> None:
    """Two panels: frames per core by N for each backend; episodes per core per day by collection mode."""
    render_ax, collect_ax = axes
    for backend in sorted({row["backend"] for row in render}):
        rows = [row for row in render if row["backend"] == backend]
        render_ax.plot([r["num_envs"] for r in rows], [r["frames_per_core_s"] for r in rows], "o-", label=backend)
    render_ax.set_xscale("log", base=2)
    render_ax.set_xlabel("environments (N)")
    render_ax.set_ylabel("RGB-D frames / s per CPU core")
    render_ax.set_title(f"head camera {render[0]['width']}x{render[0]['height']}" if render else "render")
    render_ax.set_ylim(bottom=0)
    render_ax.grid(True, alpha=0.3)
    render_ax.legend()
    labels = [row["mode"].replace(" at ", "\nat ").replace(" every", "\nevery") for row in collection]
    collect_ax.bar(range(len(collection)), [row["episodes_per_core_day"] for row in collection], color="C2")
    collect_ax.set_xticks(range(len(collection)), labels, fontsize=8)
    collect_ax.set_ylabel("episodes / CPU core / day")
    collect_ax.set_title("collection (expert, HDF5 written)")
    collect_ax.grid(True, axis="y", alpha=0.3)


__all__ = ["COLLECTION_MODES", "collection_rows", "plot_rows", "print_rows", "render_row", "render_rows"]
