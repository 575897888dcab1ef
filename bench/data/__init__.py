"""The data sets: the generated ToonVision stand-in, digits, class folders."""
