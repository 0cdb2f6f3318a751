"""The tagging model: backbone + head (backbone), training (finetune), inference (predict).

Submodules import torch and transformers; this package file does not, so `import core.model`
stays cheap and nothing is loaded at import time. Import what you need from the submodules:

    from core.model.backbone import Tagger, default_backbone, tiny_backbone
    from core.model.finetune import TrainArgs, finetune, TrainingCancelled
    from core.model.predict import load_tagger, predict, DocPrediction
"""
