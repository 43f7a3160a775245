"""Training Ground: a humanoid-robot training-ground simulator.

``import training_ground`` registers the ``TrainingGround/...`` Gymnasium ids.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("training-ground")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

from . import envs  # noqa: E402  (registers the Gymnasium ids)

__all__ = ["__version__", "envs"]
