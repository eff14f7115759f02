"""Where the audio files live."""
