"""Training Ground: a humanoid-robot training-ground simulator.

``import training_ground`` registers the ``TrainingGround/...`` Gymnasium ids.
"""

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

try:
    __version__ = version("training-ground")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

# In a source checkout this folder sits beside the subpackages' folders (robots/, physics/, ...),
# which setuptools maps in as training_ground.robots and so on. Where the checkout's root is on
# sys.path (``python -m pytest`` there), this folder is found before any installed copy, so it
# finds its subpackages the same way: an edit is seen at once, whatever the clone's folder is named.
_checkout = Path(__file__).resolve().parent.parent
if (_checkout / "pyproject.toml").is_file() and (_checkout / "physics" / "__init__.py").is_file():
    __path__.append(str(_checkout))  # noqa: F821 - the package's own search path

from . import envs  # noqa: E402  (registers the Gymnasium ids)

__all__ = ["__version__", "envs"]
