"""Pictures of environments through pybullet's renderer, for both engines.

The pybullet engine pictures each environment in its own client. The numpy engine has no
renderer of its own: it takes a :class:`Snapshot` of each environment (posture, objects,
garment) and a :class:`Viewer`, a one-environment pybullet world, shows it and takes the
pictures. A :class:`RenderPool` keeps one viewer in each of several worker processes and
splits a batch among them, so that a batch renders in parallel while the main process owns
the physics. A picture depends on the snapshot and the camera only, so env i of a batch
looks exactly as a single env in the same state, whichever viewer takes it.
"""

from __future__ import annotations

import multiprocessing.connection
import os
import socket
import subprocess
import sys
import time
import weakref
from dataclasses import dataclass

import numpy as np
import pybullet

from .cameras import CameraView, depth_from_buffer
from .scene import EpisodeSetup, ObjectParams


@dataclass(frozen=True)
class Snapshot:
    """What a picture of one environment needs.

    joint_pos: (num_joints,). base_pose: (7,) of the base link for a floating base, None for one on its mount.
    objects: one ObjectParams per scene object, at object_poses (num_objects, 7). cloth: the garment's particle
    positions (P, 3), or None for a scene without one.
    """

    joint_pos: np.ndarray
    base_pose: np.ndarray | None
    objects: tuple[ObjectParams, ...]
    object_poses: np.ndarray
    cloth: np.ndarray | None = None


def take_pictures(client, view_matrices: np.ndarray, views: tuple[CameraView, ...], width: int, height: int):
    """RGB (C, H, W, 3) uint8 and depth (C, H, W, 1) float32 (m) of ``views`` in one pybullet ``client``."""
    rgb = np.empty((len(views), height, width, 3), np.uint8)
    depth = np.empty((len(views), height, width, 1), np.float32)
    for c, view in enumerate(views):
        # TinyRenderer: the CPU rasteriser, the same on every machine (no display, no GPU driver to differ).
        _, _, rgba, buffer, _ = client.getCameraImage(
            width, height, view_matrices[c].tolist(), view.projection(width, height).tolist(),
            renderer=pybullet.ER_TINY_RENDERER, flags=pybullet.ER_NO_SEGMENTATION_MASK)
        rgb[c] = np.asarray(rgba, np.uint8).reshape(height, width, 4)[..., :3]
        depth[c, ..., 0] = depth_from_buffer(np.reshape(buffer, (height, width)), view.near, view.far)
    return rgb, depth


class Viewer:
    """A one-environment pybullet world that shows snapshots and pictures them (the numpy engine's renderer)."""

    def __init__(self, robot, scene, config):
        from .pybullet_engine import PybulletEngine

        self.engine = PybulletEngine(robot, scene, 1, config, check_drives=False)
        self._built = False

    def show(self, snapshot: Snapshot) -> None:
        if not self._built:  # the first snapshot builds the objects and the garment; later ones move them
            self.engine.reset([0], [EpisodeSetup(np.asarray(snapshot.joint_pos, float), tuple(snapshot.objects),
                                                 np.asarray(snapshot.object_poses, float))])
            self._built = True
        self.engine.show(0, snapshot)

    def pictures(self, snapshots, view_matrices, views, width, height):
        """RGB (n, C, H, W, 3) and depth (n, C, H, W, 1) of each snapshot through its row of view matrices (n, C, 16)."""
        rgb = np.empty((len(snapshots), len(views), height, width, 3), np.uint8)
        depth = np.empty((len(snapshots), len(views), height, width, 1), np.float32)
        for row, snapshot in enumerate(snapshots):
            self.show(snapshot)
            rgb[row], depth[row] = take_pictures(self.engine.clients[0], view_matrices[row], views, width, height)
        return rgb, depth

    def picture(self, snapshot: Snapshot, width=None, height=None) -> np.ndarray:
        """The scene camera's RGB picture (H, W, 3) of one snapshot (``render_mode="rgb_array"``)."""
        self.show(snapshot)
        return self.engine.render(0, width, height)

    def close(self) -> None:
        self.engine.close()


def serve(fd: int) -> None:
    """A render worker process (:class:`RenderPool`): build a viewer from the first message on the socket ``fd``, then
    picture each job that arrives until None does or the parent goes away."""
    connection = multiprocessing.connection.Connection(fd)
    try:
        viewer = Viewer(*connection.recv())
    except Exception as error:  # reported to the parent, which raises it
        connection.send(("error", f"{type(error).__name__}: {error}"))
        return
    connection.send(("ready", time.process_time()))
    try:
        while (job := connection.recv()) is not None:
            try:
                connection.send(("done", (viewer.pictures(*job), time.process_time())))
            except Exception as error:
                connection.send(("error", f"{type(error).__name__}: {error}"))
    except EOFError:  # the parent closed its end or died
        pass
    finally:
        viewer.close()


class RenderPool:
    """Viewers in ``workers`` processes; a batch's snapshots are split among them in contiguous slices.

    Each worker is a fresh interpreter (``python -c``) talking over a socket pair, not a multiprocessing child:
    spawn would run the user's main script again in every worker (scripts without a ``__main__`` guard would
    start the env again), and fork would copy the parent's OpenBLAS threads and pybullet clients mid-use.
    """

    def __init__(self, robot, scene, config, workers: int):
        if workers < 1:
            raise ValueError(f"a render pool needs at least one worker, got {workers}")
        self._connections, self._processes = [], []
        self._worker_cpu: list[float] = [0.0] * workers  # each worker's CPU seconds, as its last reply said
        # The workers import this package from where this process does, and keep to one BLAS thread each.
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path),
                       "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        code = "import sys; from training_ground.physics.rendering import serve; serve(int(sys.argv[1]))"
        try:
            for _ in range(workers):
                ours, theirs = socket.socketpair()
                with theirs:
                    process = subprocess.Popen([sys.executable, "-c", code, str(theirs.fileno())],
                                               pass_fds=(theirs.fileno(),), env=environment,
                                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
                self._processes.append(process)
                self._connections.append(multiprocessing.connection.Connection(ours.detach()))
            for connection in self._connections:
                connection.send((robot, scene, config))
            for i, connection in enumerate(self._connections):
                self._worker_cpu[i] = self._receive(connection)
            _POOLS.add(self)
        except BaseException:
            self.close()
            raise

    @property
    def workers(self) -> int:
        return len(self._connections)

    def _receive(self, connection):
        try:
            kind, payload = connection.recv()
        except (EOFError, ConnectionError):
            raise RuntimeError("a render worker process died; its pictures are lost (out of memory? its error, "
                               "if any, is on standard error above)") from None
        if kind == "error":
            raise RuntimeError(f"a render worker failed: {payload}")
        return payload

    def pictures(self, snapshots, view_matrices, views, width, height):
        slices = [s for s in np.array_split(np.arange(len(snapshots)), self.workers) if s.size]
        for connection, rows in zip(self._connections, slices):
            connection.send(([snapshots[i] for i in rows], view_matrices[rows], views, width, height))
        results = []
        for i, (connection, _) in enumerate(zip(self._connections, slices)):
            pictures, self._worker_cpu[i] = self._receive(connection)
            results.append(pictures)
        if not results:
            return (np.empty((0, len(views), height, width, 3), np.uint8),
                    np.empty((0, len(views), height, width, 1), np.float32))
        return (np.concatenate([rgb for rgb, _ in results]), np.concatenate([depth for _, depth in results]))

    @property
    def cpu_seconds(self) -> float:
        """CPU time the workers have spent so far (s), as of their last pictures."""
        return sum(self._worker_cpu)

    def close(self) -> None:
        global _CLOSED_POOLS_CPU
        if self in _POOLS:
            _POOLS.discard(self)
            _CLOSED_POOLS_CPU += self.cpu_seconds
        for connection in self._connections:
            try:
                connection.send(None)
            except (OSError, ValueError):
                pass
            connection.close()
        for process in self._processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._connections, self._processes = [], []


#: The render pools of this process, and the CPU time of those closed: collection reports count the workers' CPU.
_POOLS: "weakref.WeakSet[RenderPool]" = weakref.WeakSet()
_CLOSED_POOLS_CPU = 0.0


def process_cpu_seconds() -> float:
    """This process's CPU time (s) with its render workers': what a throughput per CPU core must divide by."""
    return time.process_time() + _CLOSED_POOLS_CPU + sum(pool.cpu_seconds for pool in list(_POOLS))


__all__ = ["RenderPool", "Snapshot", "Viewer", "process_cpu_seconds", "serve", "take_pictures"]
