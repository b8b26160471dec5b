from setuptools import Extension, setup

setup(name="nsnative.fast", version="1.0", packages=["nsnative", "nsnative.fast"],
      namespace_packages=["nsnative"],
      ext_modules=[Extension("nsnative.fast._speedups", ["nsnative/fast/_speedups.c"])])
