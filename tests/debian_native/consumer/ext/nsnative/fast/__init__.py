from ._speedups import answer

NAME = 'fast'
