NAME = 'alpha'
