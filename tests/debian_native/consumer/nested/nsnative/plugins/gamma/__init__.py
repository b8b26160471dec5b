NAME = 'gamma'
