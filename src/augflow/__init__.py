"""augflow: generative data augmentation with validation, filtering and honest evaluation."""

__version__ = "0.1.0"
