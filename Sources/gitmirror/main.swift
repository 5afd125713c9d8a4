import MirrorCore
print("hi")
