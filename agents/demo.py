"""``tground demo``: a task's scripted expert for some seeded episodes; success per episode, a GIF or a still.

Episodes run through the episode runner (agents/runner.py): one environment after another
while rendering, or all at once with ``--batch``. Episode i has seed SEED+i either way.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..envs import make_task_env, task_spec
from ..physics import BACKENDS
from ..errors import InputError
from ..progress import progress_bar
from .policies import load_policy
from .runner import PolicyRunner



def add_arguments(parser) -> None:
    """Run the scripted expert on a task for some seeded episodes."""
    parser.add_argument("task", help="task id or alias, e.g. TrainingGround/BreadPickPlace-v0 or bread")
    parser.add_argument("--backend", default="pybullet", choices=BACKENDS, help="physics backend (default: pybullet)")
    parser.add_argument("--episodes", type=int, default=5, help="number of episodes (default: 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode; episode i uses seed+i")
    parser.add_argument("--out", default=None, help="write an animated GIF of the scene camera here")
    parser.add_argument("--still", default=None, help="write a PNG of six evenly spaced frames here")
    parser.add_argument("--frame-every", type=int, default=2, help="keep every k-th control step as a frame")
    parser.add_argument("--json", default=None, help="write per-episode results to this JSON file")
    parser.add_argument("--cameras", nargs="+", default=None, metavar="CAMERA",
                        help="with --out/--still, put these cameras' pictures beside the scene's (the robot's: head, "
                             "left_wrist, right_wrist)")
    parser.add_argument("--camera-size", type=int, default=128, help="the cameras' pictures, square (default: 128)")
    parser.add_argument("--batch", action="store_true",
                        help="run all episodes at once in the native VectorEnv (env i gets seed+i; no rendering)")


class FilmingRunner(PolicyRunner):
    """Keeps every ``frame_every``-th frame of the one environment it renders."""

    def __init__(self, env, seeds, policy, frame_every: int, on_end):
        super().__init__(env, seeds, policy, on_end)
        self.frame_every, self.frames = frame_every, []

    def after_step(self, active, actions, observation, rewards, terminated, truncated, info) -> None:
        if self.steps[0] % self.frame_every == 0:
            scene = self.env.render()[0]
            pictures = [value[0] for key, value in observation.items() if key.endswith("_image")]
            self.frames.append(beside(scene, pictures) if pictures else scene)


def beside(scene: np.ndarray, pictures: list[np.ndarray]) -> np.ndarray:
    """One frame: the scene's picture, then each camera's, scaled to the scene's height (nearest pixel: a camera's
    pixels stay visible as the policy sees them)."""
    from PIL import Image

    height = scene.shape[0]
    scaled = [np.asarray(Image.fromarray(picture).resize(
        (round(picture.shape[1] * height / picture.shape[0]), height), Image.NEAREST)) for picture in pictures]
    return np.concatenate([scene, *scaled], axis=1)


def main(args) -> int:
    render = args.out is not None or args.still is not None
    if args.batch and render:
        raise InputError("--batch runs without rendering; drop --out/--still, or drop --batch")
    if args.cameras and not render:
        raise InputError("--cameras puts the cameras' pictures into --out or --still; name one of them")
    if args.episodes < 1 or args.frame_every < 1:
        raise InputError(f"--episodes and --frame-every must be >= 1, got {args.episodes} and {args.frame_every}")
    for path in (args.out, args.still, args.json):
        if path is not None and not Path(path).absolute().parent.is_dir():
            # Checked before the episodes run, not when their frames are written.
            raise InputError(f"cannot write {path}: the folder {Path(path).absolute().parent} does not exist")
    seeds = range(args.seed, args.seed + args.episodes)
    cameras = ({"obs_mode": "state+rgb", "cameras": list(args.cameras), "camera_width": args.camera_size,
                "camera_height": args.camera_size} if args.cameras else {})
    env = make_task_env(args.task, args.episodes if args.batch else 1, backend=args.backend,
                        render_mode="rgb_array" if render else None, **cameras)
    task_id = task_spec(args.task).id
    bar = progress_bar(args.episodes, "episodes", args.episodes > 1, unit="ep")

    def report(end):
        bar.update(1)
        if not args.batch:
            bar.write(f"episode {end.seed - args.seed} seed {end.seed}: {'success' if end.success else 'failure'} "
                      f"after {end.steps} steps")

    try:
        policy = load_policy("expert", env)
        runner = (FilmingRunner(env, seeds, policy, args.frame_every, report) if render
                  else PolicyRunner(env, seeds, policy, report))
        ends = runner.run()
    finally:
        bar.close()
        env.close()
    if args.batch:
        for end in ends:
            print(f"episode {end.seed - args.seed} seed {end.seed}: {'success' if end.success else 'failure'} "
                  f"after {end.steps} steps")
    successes = [end.success for end in ends]
    rate = float(np.mean(successes))
    print(f"success rate {rate:.0%} ({sum(successes)}/{len(successes)}) on {task_id} [{args.backend}]")
    frames = runner.frames if render else []
    if args.out:
        write_animation(frames, args.out, fps=max(1, int(round(50 / args.frame_every))))
        print(f"wrote {args.out} ({len(frames)} frames)")
    if args.still:
        # With cameras a frame is a wide row of pictures: three moments, one above the other.
        write_contact_sheet(frames, args.still, *((1, 3) if args.cameras else (3, 2)))
        print(f"wrote {args.still}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "task": task_id, "backend": args.backend, "seeds": list(seeds), "success": successes,
            "episode_steps": [end.steps for end in ends], "success_rate": rate}, indent=2))
    return 0


def write_animation(frames, path: str, fps: int) -> None:
    """GIF through Pillow (matplotlib's dependency), so no video codec is needed."""
    from PIL import Image

    if not frames:
        raise RuntimeError("no frames were rendered")
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)


def write_contact_sheet(frames, path: str, columns: int = 3, rows: int = 2) -> None:
    """A PNG of evenly spaced frames, for READMEs and reports."""
    from PIL import Image

    picks = [frames[int(i)] for i in np.linspace(0, len(frames) - 1, columns * rows)]
    height, width = picks[0].shape[:2]
    sheet = Image.new("RGB", (columns * width, rows * height))
    for k, frame in enumerate(picks):
        sheet.paste(Image.fromarray(frame), ((k % columns) * width, (k // columns) * height))
    sheet.save(path)
