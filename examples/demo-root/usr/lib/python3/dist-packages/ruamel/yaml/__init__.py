__version__ = '0.17'
