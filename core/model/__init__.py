"""The tagging model: the tagger (backbone), where encoders come from (encoders), device and
precision policy (device), the shared training step (trainer), finetuning (finetune),
continued pretraining (pretrain), inference (predict) and decoding rules (rules).

Submodules import torch and transformers; this package file does not, so `import core.model`
stays cheap and nothing is loaded at import time. Import what you need from the submodules:

    from core.model.backbone import Tagger
    from core.model.encoders import default_backbone
    from core.model.finetune import TrainArgs, finetune
    from core.model.trainer import TrainingCancelled
    from core.model.predict import load_tagger, predict, DocPrediction
"""
