subscribers = []
