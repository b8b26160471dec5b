from setuptools import setup

setup(name="nsnative.gamma", version="1.0",
      packages=["nsnative", "nsnative.plugins", "nsnative.plugins.gamma"])
