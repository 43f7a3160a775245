"""The ``tground`` command line: ``tground --help`` lists the subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _demo(args: argparse.Namespace) -> int:
    import numpy as np

    from .envs import resolve_task_id

    task_id = resolve_task_id(args.task)
    render = args.out is not None or args.still is not None
    if args.batch and render:
        raise ValueError("--batch runs without rendering; drop --out/--still, or drop --batch")
    if args.batch:
        successes, lengths = _demo_batch(task_id, args)
    else:
        successes, lengths, frames = _demo_episodes(task_id, args, render)
    rate = float(np.mean(successes))
    print(f"success rate {rate:.0%} ({sum(successes)}/{len(successes)}) on {task_id} [{args.backend}]")
    if args.out:
        _write_animation(frames, args.out, fps=max(1, int(round(50 / args.frame_every))))
        print(f"wrote {args.out} ({len(frames)} frames)")
    if args.still:
        _write_contact_sheet(frames, args.still)
        print(f"wrote {args.still}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "task": task_id, "backend": args.backend, "seeds": [args.seed + i for i in range(args.episodes)],
            "success": successes, "episode_steps": lengths, "success_rate": rate,
        }, indent=2))
    return 0


def _demo_episodes(task_id: str, args: argparse.Namespace, render: bool):
    """One env, episodes one after another with seeds seed, seed+1, ..."""
    import gymnasium
    from tqdm import tqdm

    from .agents.experts import make_expert

    env = gymnasium.make(task_id, backend=args.backend, render_mode="rgb_array" if render else None)
    frames, successes, lengths = [], [], []
    try:
        expert = make_expert(env, task_id)
        for episode in tqdm(range(args.episodes), desc="episodes", unit="ep", disable=args.episodes < 2):
            seed = args.seed + episode
            observation, _ = env.reset(seed=seed)
            expert.reset()
            done, steps, info = False, 0, {"is_success": False}
            while not done:
                observation, _, terminated, truncated, info = env.step(expert(observation))
                steps += 1
                done = terminated or truncated
                if render and steps % args.frame_every == 0:
                    frames.append(env.render())
            successes.append(bool(info["is_success"]))
            lengths.append(steps)
            tqdm.write(f"episode {episode} seed {seed}: {'success' if info['is_success'] else 'failure'} "
                       f"after {steps} steps")
    finally:
        env.close()
    return successes, lengths, frames


def _demo_batch(task_id: str, args: argparse.Namespace):
    """All episodes at once in the native VectorEnv; env i gets seed+i, as a single env would."""
    import gymnasium
    import numpy as np
    from tqdm import tqdm

    from .agents.experts import make_expert

    n = args.episodes
    env = gymnasium.make_vec(task_id, num_envs=n, vectorization_mode="vector_entry_point", backend=args.backend)
    try:
        expert = make_expert(env, task_id)
        observation, _ = env.reset(seed=args.seed)
        expert.reset()
        finished, succeeded = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        lengths = np.zeros(n, dtype=np.int64)
        with tqdm(total=n, desc="episodes", unit="ep") as bar:
            while not finished.all():
                observation, _, terminated, truncated, info = env.step(expert.act(observation))
                lengths += ~finished
                newly = (terminated | truncated) & ~finished
                succeeded |= info["is_success"] & newly
                finished |= newly
                bar.update(int(newly.sum()))
    finally:
        env.close()
    for i in range(n):
        print(f"episode {i} seed {args.seed + i}: {'success' if succeeded[i] else 'failure'} after {lengths[i]} steps")
    return succeeded.tolist(), lengths.tolist()


def _write_animation(frames, path: str, fps: int) -> None:
    """GIF through Pillow (matplotlib's dependency), so no video codec is needed."""
    from PIL import Image

    if not frames:
        raise RuntimeError("no frames were rendered")
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)


def _write_contact_sheet(frames, path: str, columns: int = 3, rows: int = 2) -> None:
    """A PNG of evenly spaced frames, for READMEs and reports."""
    import numpy as np
    from PIL import Image

    picks = [frames[int(i)] for i in np.linspace(0, len(frames) - 1, columns * rows)]
    height, width = picks[0].shape[:2]
    sheet = Image.new("RGB", (columns * width, rows * height))
    for k, frame in enumerate(picks):
        sheet.paste(Image.fromarray(frame), ((k % columns) * width, (k // columns) * height))
    sheet.save(path)


def _bench_envs(args: argparse.Namespace) -> int:
    from .benchmarks import env_throughput

    return env_throughput.main(args)


def _bench_engine(args: argparse.Namespace) -> int:
    from .benchmarks import engine_throughput

    return engine_throughput.main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tground", description="Training Ground: humanoid training-ground simulator.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="run a task's scripted expert, print success, optionally write a GIF",
                          description="Run the scripted expert on a task for some seeded episodes.")
    demo.add_argument("task", help="task id or alias, e.g. TrainingGround/BreadPickPlace-v0 or bread")
    demo.add_argument("--backend", default="pybullet", help="physics backend (default: pybullet)")
    demo.add_argument("--episodes", type=int, default=5, help="number of episodes (default: 5)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the first episode; episode i uses seed+i")
    demo.add_argument("--out", default=None, help="write an animated GIF of the scene camera here")
    demo.add_argument("--still", default=None, help="write a PNG of six evenly spaced frames here")
    demo.add_argument("--frame-every", type=int, default=2, help="keep every k-th control step as a frame")
    demo.add_argument("--json", default=None, help="write per-episode results to this JSON file")
    demo.add_argument("--batch", action="store_true",
                      help="run all episodes at once in the native VectorEnv (env i gets seed+i; no rendering)")
    demo.set_defaults(handler=_demo)

    from .benchmarks import engine_throughput, env_throughput

    bench = sub.add_parser("bench", help="throughput benchmarks (engine, envs) with JSON + PNG",
                           description="Throughput benchmarks; each writes a table, JSON and a PNG.")
    bench_sub = bench.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    engine = bench_sub.add_parser("engine", help="physics env-steps/s: numpy vs pybullet vs MuJoCo, contact-free",
                                  description=engine_throughput.__doc__.split("\n\n")[0])
    engine_throughput.add_arguments(engine)
    engine.set_defaults(handler=_bench_engine)
    envs = bench_sub.add_parser("envs", help="task env-steps/s on a backend for several batch sizes",
                                description=env_throughput.__doc__.split("\n\n")[0])
    env_throughput.add_arguments(envs)
    envs.set_defaults(handler=_bench_envs)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.handler(args)
    except (KeyError, ValueError, RuntimeError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"tground {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
