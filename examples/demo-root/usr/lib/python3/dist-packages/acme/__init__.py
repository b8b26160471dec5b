__path__ = __import__('pkgutil').extend_path(__path__, __name__)

from .registry import register  # re-exported: this makes the file a hybrid
