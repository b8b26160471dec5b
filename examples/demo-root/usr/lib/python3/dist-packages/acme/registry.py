def register(name):
    return name
