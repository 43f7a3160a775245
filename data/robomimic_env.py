"""robomimic's view of a Training Ground task: an env class on robomimic's ``EnvBase`` and its registration, so that
robomimic's own ``train.py`` makes the env a collected dataset names and runs its rollouts (and videos) there.

This module imports robomimic and needs it installed, which the project's environment does not hold: robomimic 0.3
imports torchvision, and the torchvision beside this machine's CPU torch fails to import. The ``robomimic`` extra
goes into a virtualenv of its own (README, "robomimic"). Run robomimic's training with::

    python -m training_ground.data.robomimic_env config DATASET.hdf5 bc_rnn.json --rgb head_image
    python -m training_ground.data.robomimic_env --config bc_rnn.json [any other train.py argument]

The first writes robomimic's BC-RNN config for the dataset (:func:`bc_rnn_config`); the second registers the env
class and runs ``robomimic.scripts.train`` as its own ``__main__``.

robomimic picks an env class by ``env_args["type"]`` among its own (1 robosuite, 2 gym, 3 iGibson) with no plugin
hook. A dataset of this project records type 2 (robomimic's EnvType.GYM_TYPE) and a Gymnasium id of this project's
registry as ``env_name``; :func:`register` wraps robomimic's env factories (``EnvUtils.get_env_class``,
``create_env_from_metadata``, ``create_env_for_data_processing``) so that such env_args make
:class:`EnvTrainingGround` and every other env_args what they made before.

Rollouts start episodes from seeds drawn from numpy's global generator, which robomimic's train.py seeds with the
config's ``train.seed``: a run is repeatable, and its seeds are not the dataset's 0..N-1.
"""

from __future__ import annotations

import json
import runpy
import sys
from copy import deepcopy
from pathlib import Path

import gymnasium
import numpy as np
import robomimic.envs.env_base as EB
import robomimic.utils.env_utils as EnvUtils
import robomimic.utils.obs_utils as ObsUtils

from .. import __version__
from ..envs import TASKS, task_spec

#: What robomimic rollouts draw episode seeds below.
ROLLOUT_SEED_LIMIT = 2**31 - 1


def is_training_ground(env_meta: dict | None) -> bool:
    """Whether robomimic env_args (a dataset's ``data.attrs["env_args"]``) name a task of this project."""
    if not env_meta:
        return False
    try:
        return env_meta.get("type") == EB.EnvType.GYM_TYPE and task_spec(env_meta["env_name"]).id in TASKS
    except KeyError:
        return False


class EnvTrainingGround(EB.EnvBase):
    """One environment of a task, as robomimic's rollouts, video writer and dataset tools use it.

    Observations are the env's (its obs_mode's keys); image and depth keys, as robomimic's config names them, come
    processed for its networks (channels first, in [0, 1]) unless ``postprocess_visual_obs`` is False.
    """

    def __init__(self, env_name, render=False, render_offscreen=False, use_image_obs=False, use_depth_obs=False,
                 postprocess_visual_obs=True, backend="numpy", action_mode=None, reward_mode="dense", config=None):
        self._env_name = task_spec(env_name).id
        self._init_kwargs = {"backend": backend, "action_mode": action_mode, "reward_mode": reward_mode,
                             "config": deepcopy(config)}
        self.postprocess_visual_obs = postprocess_visual_obs
        self.env = gymnasium.make(self._env_name, backend=backend, action_mode=action_mode, reward_mode=reward_mode,
                                  config=config, render_mode="human" if render else "rgb_array")
        self.task = self.env.unwrapped.task
        obs_mode = self.task.config.obs_mode
        if (use_image_obs or use_depth_obs) and obs_mode == "state":
            self.env.close()
            raise ValueError("the config asks for image observations, but this dataset's obs_mode is 'state': its "
                             "demos hold no pictures. Collect with --set obs_mode=state+rgb, or add them with "
                             "tground replay FILE --add-cameras head --out NEW.hdf5")
        if use_depth_obs and not obs_mode.endswith("d"):
            self.env.close()
            raise ValueError(f"the config asks for depth observations; this dataset's obs_mode {obs_mode!r} has none")
        self._observation = None
        self._reward = 0.0
        self._done = False
        self._success = False
        self._seed = None

    # ------------------------------------------------------------------ episodes
    def reset(self):
        return self._start(int(np.random.randint(ROLLOUT_SEED_LIMIT)))

    def _start(self, seed: int):
        self._seed = seed
        self._observation, _ = self.env.reset(seed=seed)
        self._reward, self._done, self._success = 0.0, False, False
        return self.get_observation()

    def reset_to(self, state):
        """Restore ``state["states"]`` (a row of a demo's ``states``). With ``state["seed"]`` (what :meth:`get_state`
        gives; a demo's ``seed`` attribute) the episode of that seed starts first, so its objects are the recorded
        ones; without it the state is restored into the current episode's objects."""
        if "seed" in state:
            self._start(int(state["seed"]))
        self.task.set_state([0], np.asarray(state["states"], np.float64)[None])
        self._observation = self.env.unwrapped.current_observation()
        return self.get_observation()

    def step(self, action):
        action = np.clip(np.asarray(action, np.float64), -1.0, 1.0).astype(np.float32)  # as robosuite clips
        self._observation, reward, terminated, truncated, info = self.env.step(action)
        self._reward, self._done, self._success = float(reward), bool(terminated or truncated), info["is_success"]
        return self.get_observation(), self._reward, self._done, info

    # ------------------------------------------------------------------ reads
    def get_observation(self, obs=None):
        observation = self._observation if obs is None else obs
        processed = {}
        for key, value in observation.items():
            value = np.array(value)
            visual = key in ObsUtils.OBS_KEYS_TO_MODALITIES and (
                ObsUtils.key_is_obs_modality(key=key, obs_modality="rgb")
                or ObsUtils.key_is_obs_modality(key=key, obs_modality="depth"))
            processed[key] = ObsUtils.process_obs(obs=value, obs_key=key) if visual and self.postprocess_visual_obs \
                else value
        return processed

    def get_state(self):
        return {"states": self.task.get_state()[0], "seed": self._seed}

    def get_reward(self):
        return self._reward

    def get_goal(self):
        raise NotImplementedError("Training Ground tasks have no goal observations")

    def set_goal(self, **kwargs):
        raise NotImplementedError("Training Ground tasks have no goal observations")

    def is_done(self):
        return self._done

    def is_success(self):
        return {"task": bool(self._success)}

    def render(self, mode="human", height=None, width=None, camera_name=None):
        """``mode="rgb_array"``: the scene camera's picture at width x height (robomimic's videos), or the named
        camera's (``camera_name``: head, left_wrist, ...). ``"human"``: the pybullet GUI window (backend pybullet,
        made with render=True) shows the episode by itself."""
        if mode == "human":
            return None
        if mode != "rgb_array":
            raise NotImplementedError(f"render mode {mode!r}: use 'rgb_array' or 'human'")
        if camera_name is None:
            return self.task.engine.render(0, width, height)
        from ..physics.cameras import resolve_cameras

        views = resolve_cameras(self.task.robot, self.task.scene, [camera_name])
        rgb, _ = self.task.engine.render_cameras(views, width or 128, height or 128, [0])
        return rgb[0, 0]

    # ------------------------------------------------------------------ description
    @property
    def action_dimension(self):
        return int(self.env.action_space.shape[0])

    @property
    def name(self):
        """The Gymnasium id with ``-`` for ``/``: robomimic names log keys and video files after it."""
        return self._env_name.replace("/", "-")

    @property
    def type(self):
        return EB.EnvType.GYM_TYPE  # what this project's datasets record (see the module's notes)

    @property
    def version(self):
        return __version__

    def serialize(self):
        return {"env_name": self._env_name, "type": self.type, "env_kwargs": deepcopy(self._init_kwargs)}

    @classmethod
    def create_for_data_processing(cls, env_name, camera_names=(), camera_height=128, camera_width=128,
                                   reward_shaping=True, **kwargs):
        """The env for robomimic's dataset scripts: the observation keys registered by modality (pictures as
        rgb and depth, everything else low_dim), as robomimic's scripts expect before they read observations."""
        env = cls(env_name, **kwargs)
        keys = list(env.env.observation_space.spaces)
        ObsUtils.initialize_obs_utils_with_obs_specs({"obs": {
            "low_dim": [key for key in keys if not key.endswith(("_image", "_depth"))],
            "rgb": [key for key in keys if key.endswith("_image")],
            "depth": [key for key in keys if key.endswith("_depth")]}})
        return env

    @property
    def rollout_exceptions(self):
        return ()  # a blow-up truncates the episode and flags it in info; nothing is raised

    @property
    def base_env(self):
        return self.env

    def __repr__(self):
        return self.name + "\n" + json.dumps(self._init_kwargs, sort_keys=True, indent=4)


def register() -> None:
    """Make robomimic's env factories give :class:`EnvTrainingGround` for this project's env_args (idempotent)."""
    if getattr(EnvUtils.get_env_class, "training_ground", False):
        return
    get_env_class, from_metadata = EnvUtils.get_env_class, EnvUtils.create_env_from_metadata
    for_processing = EnvUtils.create_env_for_data_processing

    def get_env_class_with_ours(env_meta=None, env_type=None, env=None):
        if isinstance(env, EnvTrainingGround) or is_training_ground(env_meta):
            return EnvTrainingGround
        return get_env_class(env_meta=env_meta, env_type=env_type, env=env)

    def create_env_from_metadata_with_ours(env_meta, env_name=None, render=False, render_offscreen=False,
                                           use_image_obs=False, **kwargs):
        if not is_training_ground(env_meta):
            return from_metadata(env_meta, env_name=env_name, render=render, render_offscreen=render_offscreen,
                                 use_image_obs=use_image_obs, **kwargs)
        env = EnvTrainingGround(env_name or env_meta["env_name"], render=render, render_offscreen=render_offscreen,
                                use_image_obs=use_image_obs, **kwargs, **env_meta["env_kwargs"])
        EnvUtils.check_env_version(env, env_meta)
        return env

    def create_env_for_data_processing_with_ours(env_meta, *args, **kwargs):
        if not is_training_ground(env_meta):
            return for_processing(env_meta, *args, **kwargs)
        names = ("camera_names", "camera_height", "camera_width", "reward_shaping")
        options = {**dict(zip(names, args)), **{key: kwargs[key] for key in names if key in kwargs}}
        extra = {key: value for key, value in kwargs.items() if key not in names and key != "env_name"}
        return EnvTrainingGround.create_for_data_processing(kwargs.get("env_name") or env_meta["env_name"],
                                                            **options, **extra, **env_meta["env_kwargs"])

    get_env_class_with_ours.training_ground = True
    EnvUtils.get_env_class = get_env_class_with_ours
    EnvUtils.create_env_from_metadata = create_env_from_metadata_with_ours
    EnvUtils.create_env_for_data_processing = create_env_for_data_processing_with_ours


def bc_rnn_config(dataset, output_dir, *, rgb=(), low_dim=("joint_pos", "joint_vel", "hand_pos", "hand_quat"),
                  epochs=600, steps_per_epoch=100, batch_size=16, rollouts=50, rollout_horizon=300, rollout_every=50,
                  video=True, seed=1):
    """robomimic's BC-RNN config (``config_factory("bc")`` with its RNN on, as robomimic's image BC-RNN runs set
    it: sequences of 10, a 2-layer LSTM of 1000, a GMM head; ResNet-18 with spatial softmax over the pictures,
    random crops of 90 %) for a dataset of this project, with rollouts in its env every ``rollout_every`` epochs."""
    import h5py
    from robomimic.config import config_factory

    with h5py.File(dataset, "r") as handle:
        demo = handle["data"][next(iter(handle["data"]))]
        shapes = {key: demo["obs"][key].shape[1:] for key in demo["obs"]}
    missing = [key for key in (*rgb, *low_dim) if key not in shapes]
    if missing:
        raise ValueError(f"{dataset} has no observations {missing}; it has {sorted(shapes)}")
    config = config_factory("bc")
    with config.values_unlocked():
        config.experiment.name = "bc_rnn_" + "_".join(rgb or ("low_dim",))
        config.experiment.validate = False
        config.experiment.logging.log_tb = False
        config.experiment.save.every_n_epochs = rollout_every
        config.experiment.epoch_every_n_steps = steps_per_epoch
        config.experiment.render_video = video
        config.experiment.rollout.enabled = rollouts > 0
        config.experiment.rollout.n = rollouts
        config.experiment.rollout.horizon = rollout_horizon
        config.experiment.rollout.rate = rollout_every
        config.train.data = str(dataset)
        config.train.output_dir = str(Path(output_dir).resolve())  # robomimic reads a relative one from its own folder
        config.train.seq_length = 10
        config.train.batch_size = batch_size
        config.train.num_epochs = epochs
        config.train.cuda = False
        config.train.seed = seed
        config.train.hdf5_cache_mode = "low_dim" if rgb else "all"
        config.algo.rnn.enabled = True
        config.algo.rnn.horizon = 10
        config.algo.rnn.hidden_dim = 1000
        config.algo.gmm.enabled = True
        config.observation.modalities.obs.low_dim = list(low_dim)
        config.observation.modalities.obs.rgb = list(rgb)
        if rgb:
            height, width = shapes[rgb[0]][:2]
            config.observation.encoder.rgb.core_kwargs.backbone_class = "ResNet18Conv"
            config.observation.encoder.rgb.core_kwargs.pool_class = "SpatialSoftmax"
            config.observation.encoder.rgb.obs_randomizer_class = "CropRandomizer"
            config.observation.encoder.rgb.obs_randomizer_kwargs.crop_height = int(round(0.9 * height))
            config.observation.encoder.rgb.obs_randomizer_kwargs.crop_width = int(round(0.9 * width))
    return config


def main(argv=None) -> None:
    """``config DATASET OUT.json [--rgb KEY ...] [--epochs N] ...``: write :func:`bc_rnn_config`; anything else:
    robomimic's scripts/train.py with those arguments, this project's env class registered."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["config"]:
        import argparse

        parser = argparse.ArgumentParser(prog="python -m training_ground.data.robomimic_env config")
        parser.add_argument("dataset")
        parser.add_argument("out")
        parser.add_argument("--output-dir", default="robomimic_runs")
        parser.add_argument("--rgb", nargs="*", default=[])
        parser.add_argument("--low-dim", nargs="*", default=["joint_pos", "joint_vel", "hand_pos", "hand_quat"])
        for name, default in (("epochs", 600), ("steps-per-epoch", 100), ("batch-size", 16), ("rollouts", 50),
                              ("rollout-horizon", 300), ("rollout-every", 50), ("seed", 1)):
            parser.add_argument(f"--{name}", type=int, default=default)
        parser.add_argument("--no-video", action="store_true")
        args = parser.parse_args(argv[1:])
        config = bc_rnn_config(args.dataset, args.output_dir, rgb=args.rgb, low_dim=args.low_dim, epochs=args.epochs,
                               steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size, rollouts=args.rollouts,
                               rollout_horizon=args.rollout_horizon, rollout_every=args.rollout_every,
                               video=not args.no_video, seed=args.seed)
        with open(args.out, "w") as file:
            file.write(config.dump())
        return
    register()
    sys.argv = ["train.py", *argv]
    runpy.run_module("robomimic.scripts.train", run_name="__main__")


if __name__ == "__main__":
    main()


__all__ = ["EnvTrainingGround", "bc_rnn_config", "is_training_ground", "main", "register"]
