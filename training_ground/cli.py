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

    from .agents.policies import make_expert

    env = gymnasium.make(task_id, backend=args.backend, render_mode="rgb_array" if render else None)
    frames, successes, lengths = [], [], []
    try:
        expert = make_expert(env)
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
    from tqdm import tqdm

    from .benchmarks.expert_success import run_expert_batch

    with tqdm(total=args.episodes, desc="episodes", unit="ep") as bar:
        succeeded, lengths = run_expert_batch(task_id, args.backend, args.episodes, args.seed, bar.update)
    for i in range(args.episodes):
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


def _collect(args: argparse.Namespace) -> int:
    from .data import collect as collecting

    options = collecting.CollectOptions(
        task=args.task, episodes=args.episodes, out=args.out, robots=args.robots, backend=args.backend,
        seed=args.seed, action_mode=args.action_mode, overrides=args.set, policy=args.policy,
        only_success=args.only_success, report=args.report, commit_every=args.commit_every)
    if _ray_wanted(args, scaling=args.scaling):
        from .data import distributed  # Ray is imported only here

        result = distributed.collect_distributed(options, args.ray, workers=args.workers, retries=args.retries,
                                                 measure_scaling=args.scaling)
    else:
        result = collecting.collect(options)
    if result.report is not None:
        print(result.report.table())
        json_path, png_path = collecting.write_report(result.report, options)
        print(f"{args.out}: {result.file_episodes} episodes; report {json_path}, plot {png_path}")
    if result.message:
        print(result.message, file=sys.stderr if result.interrupted else sys.stdout)
    return 130 if result.interrupted else 0


def _replay(args: argparse.Namespace) -> int:
    from .data import replay

    if args.render:
        demo = args.render_demo or "demo_0"
        frames = replay.render_demo(args.dataset, demo, args.render, frame_every=args.frame_every)
        print(f"wrote {args.render} ({frames} frames of {demo})")
        if not args.check:
            return 0
    demos = args.demos or None
    if demos is None and args.episodes is not None:
        from .data.dataset import demo_names, open_dataset

        with open_dataset(args.dataset) as handle:
            demos = demo_names(handle["data"])[:args.episodes]
    result = replay.replay_dataset(args.dataset, demos, robots=args.robots, atol=args.atol)
    print(result.summary())
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_json(), indent=2))
    return 0 if result.reproduced == len(result.checks) else 1


def _dataset_info(args: argparse.Namespace) -> int:
    from .data.dataset import inspect_dataset

    info = inspect_dataset(args.dataset)
    print(json.dumps(info.to_json(), indent=2) if args.json else info.format())
    return 1 if info.problems else 0


def _add_ray_arguments(parser, what: str) -> None:
    parser.add_argument("--ray", default=None, metavar="auto|ADDRESS",
                        help=f"{what} (the dist extra). auto: the Ray cluster this machine is in, else a new local "
                             f"one; or the head node's HOST:PORT (ray start --head prints it)")
    parser.add_argument("--workers", type=int, default=None,
                        help="with --ray: worker processes, one CPU each (default: 2)")
    parser.add_argument("--retries", type=int, default=None,
                        help="with --ray: how often a lost worker is restarted to take up its work again "
                             "(default: 3)")


def _ray_wanted(args: argparse.Namespace, **more) -> bool:
    """Whether to run over Ray; options that only mean something with --ray are an error without it."""
    if args.ray is not None:
        args.workers = 2 if args.workers is None else args.workers
        args.retries = 3 if args.retries is None else args.retries
        return True
    given = [f"--{name}" for name, value in (("workers", args.workers), ("retries", args.retries), *more.items())
             if value not in (None, False)]
    if given:
        raise ValueError(f"{', '.join(given)} only apply with --ray auto|ADDRESS")
    return False


def _eval(args: argparse.Namespace) -> int:
    from .agents import evaluate

    if not _ray_wanted(args):
        return evaluate.main(args)
    from .agents.train import args_from_namespace
    from .data import distributed  # Ray is imported only here

    eval_args = args_from_namespace(evaluate.EvalArgs, args)
    summaries = distributed.evaluate_distributed(eval_args, args.ray, workers=args.workers, retries=args.retries)
    print(evaluate.format_table(summaries))
    out = Path(eval_args.out)
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.png')}")
    return 0


def _dataset_merge(args: argparse.Namespace) -> int:
    from .data.dataset import merge_datasets

    if (args.seed is None) != (args.episodes is None):
        raise ValueError("--seed and --episodes go together (the seeds SEED..SEED+EPISODES-1)")
    seeds = None if args.seed is None else range(args.seed, args.seed + args.episodes)
    print(merge_datasets(args.shards, args.out, seeds).summary())
    return 0


def _add_data_commands(sub) -> None:
    collect = sub.add_parser(
        "collect", help="run a policy on N simulated robots and write every episode to an HDF5 dataset",
        description="Run a policy (the task's scripted expert by default) on N simulated robots at once and write "
                    "every episode to a crash-safe HDF5 dataset (robomimic layout); rerunning the same command "
                    "resumes. Episode k gets seed SEED+k. Ends with a report against the real field.")
    collect.add_argument("--task", required=True, help="task id or alias, e.g. TrainingGround/BreadPickPlace-v0 or bread")
    collect.add_argument("--robots", type=int, default=64, help="simulated robots stepped together (default: 64)")
    collect.add_argument("--episodes", type=int, required=True, help="episodes to collect (seeds SEED..SEED+N-1)")
    collect.add_argument("--out", required=True, help="dataset file (.hdf5); an existing one of the same run resumes")
    collect.add_argument("--backend", default="numpy", help="physics backend: numpy (default) or pybullet")
    collect.add_argument("--seed", type=int, default=0, help="seed of the first episode (default: 0)")
    collect.add_argument("--action-mode", default=None, help="joint_pos or ee_delta (default: the task's)")
    collect.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help="task config override, repeatable: --set max_steps=200 --set ik.damping=0.1")
    collect.add_argument("--policy", default="expert",
                         help="expert (default), a saved SB3 model PATH.zip, or module:callable (called with the "
                              "vector env, returns a batched policy)")
    collect.add_argument("--only-success", action="store_true",
                         help="keep only successful episodes (failed seeds are recorded in filtered_seeds)")
    collect.add_argument("--report", default=None,
                         help="report JSON path (default: OUT_report.json beside the dataset); a PNG goes beside it")
    collect.add_argument("--commit-every", type=float, default=30.0,
                         help="seconds between merges of finished episodes into the file (default: 30)")
    _add_ray_arguments(collect, "collect on Ray workers, each writing a shard beside OUT; the shards are merged "
                                "into OUT at the end")
    collect.add_argument("--scaling", action="store_true",
                         help="with --ray: first time one worker alone on one worker's share of the seeds and "
                              "report the scaling efficiency (the share is collected twice)")
    collect.set_defaults(handler=_collect)

    replay = sub.add_parser(
        "replay", help="re-run a dataset's episodes and check that success and final states reproduce",
        description="Restore each episode's initial state, apply its recorded actions on the same engine and check "
                    "that it ends on the same step with the same success flag and final state.")
    replay.add_argument("dataset", help="an HDF5 file written by tground collect")
    replay.add_argument("--demos", nargs="+", default=None, metavar="DEMO", help="only these demos (e.g. demo_0)")
    replay.add_argument("--episodes", type=int, default=None, help="only the first N demos")
    replay.add_argument("--robots", type=int, default=16, help="episodes replayed side by side (default: 16)")
    replay.add_argument("--atol", type=float, default=0.0,
                        help="allowed final-state difference (default: 0, bit for bit)")
    replay.add_argument("--json", default=None, help="write per-episode results to this JSON file")
    replay.add_argument("--render", default=None, metavar="OUT.gif",
                        help="write an animated GIF of one replayed demo instead of checking them all")
    replay.add_argument("--render-demo", default=None, metavar="DEMO", help="the demo to render (default: demo_0)")
    replay.add_argument("--frame-every", type=int, default=2, help="keep every k-th control step as a frame")
    replay.add_argument("--check", action="store_true", help="with --render, also check the episodes")
    replay.set_defaults(handler=_replay)

    dataset = sub.add_parser("dataset", help="inspect and merge datasets (dataset info FILE, dataset merge ...)",
                             description="Inspect and merge datasets written by tground collect.")
    dataset_sub = dataset.add_subparsers(dest="dataset_command", metavar="COMMAND", required=True)
    info = dataset_sub.add_parser("info", help="counts, success rate, lengths, action range of a dataset",
                                  description="Counts, success rate, episode lengths, seeds and action range; "
                                              "checks every demo's keys and sizes.")
    info.add_argument("dataset", help="an HDF5 file written by tground collect")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(handler=_dataset_info)
    merge = dataset_sub.add_parser(
        "merge", help="merge datasets of one collection (the shards of a --ray run) into one file",
        description="Merge datasets of one collection (same task, engine, config and policy; the shards of "
                    "tground collect --ray) into one robomimic-layout file, demos in seed order. A seed in two "
                    "inputs is an error. With --seed/--episodes the output must hold exactly those seeds.")
    merge.add_argument("shards", nargs="+", metavar="SHARD", help="HDF5 files written by tground collect")
    merge.add_argument("--out", required=True, help="the merged file (may be one of the inputs: replaced atomically)")
    merge.add_argument("--seed", type=int, default=None, help="with --episodes: require exactly seeds SEED..SEED+N-1")
    merge.add_argument("--episodes", type=int, default=None, help="with --seed: how many seeds")
    merge.set_defaults(handler=_dataset_merge)


def _add_learning_commands(sub) -> None:
    """train, bc and eval: their options live beside the code in agents/ (dataclasses with one doc line a field)."""
    from .agents import bc, evaluate, train

    learn = sub.add_parser("train", help="train PPO or SAC (stable-baselines3, rl extra) on a task's batched env",
                           description=train.__doc__.split("\n\n")[0])
    train.add_arguments(learn)
    learn.set_defaults(handler=train.main)
    clone = sub.add_parser("bc", help="behaviour cloning: an MLP policy (torch, rl extra) from a collected dataset",
                           description=bc.__doc__.split("\n\n")[0])
    bc.add_arguments(clone)
    clone.set_defaults(handler=bc.main)
    assess = sub.add_parser("eval", help="evaluate policies on many metrics; table, JSON and a comparison PNG",
                            description=evaluate.__doc__.split("\n\n")[0])
    evaluate.add_arguments(assess)
    _add_ray_arguments(assess, "evaluate on Ray workers, each running chunks of the seeds")
    assess.set_defaults(handler=_eval)


def _bench_envs(args: argparse.Namespace) -> int:
    from .benchmarks import env_throughput

    return env_throughput.main(args)


def _bench_experts(args: argparse.Namespace) -> int:
    from .benchmarks import expert_success

    return expert_success.main(args)


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

    from .benchmarks import engine_throughput, env_throughput, expert_success

    bench = sub.add_parser("bench", help="benchmarks with JSON + PNG: engine and env throughput, expert success table",
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
    experts = bench_sub.add_parser("experts", help="every task's scripted expert on every engine: the success table",
                                   description=expert_success.__doc__.split("\n\n")[0])
    expert_success.add_arguments(experts)
    experts.set_defaults(handler=_bench_experts)
    _add_data_commands(sub)
    _add_learning_commands(sub)
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
