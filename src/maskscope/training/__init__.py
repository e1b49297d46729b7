"""Training the speech-enhancement models: data crops, loss, the resumable loop, each kind of variant."""
