def lines(s):
    return s.splitlines()
