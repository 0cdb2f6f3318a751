"""fewlabel: active-learning span labeling with Few Example Learning."""

__version__ = "0.1.0"
