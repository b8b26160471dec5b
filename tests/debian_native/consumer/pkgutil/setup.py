from setuptools import setup

setup(name="nsnative.alpha", version="1.0", packages=["nsnative", "nsnative.alpha"])
