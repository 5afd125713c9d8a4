import MirrorCore
