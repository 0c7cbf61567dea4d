"""Model inputs: camera frames + ego history -> the token ids and pixel tensors the VLM reads.

One place defines the prompts, rendered as Qwen3-VL's chat template renders a message list
(content items concatenated with no separator; an image item is
<|vision_start|><|image_pad|><|vision_end|>):
- `build_prompt`, the driving prompt: system line, the images, 48 history-trajectory
  placeholders, for Alpamayo 1.5 the optional <|route_start|>navigation<|route_end|>, the
  instruction, and an assistant turn opened with <|cot_start|>;
- `build_question_prompt` (Alpamayo 1.5): the images and
  <|question_start|>question<|question_end|>, the assistant turn opened with <|answer_start|>.
Alpamayo 1 images are unlabelled; Alpamayo 1.5 puts "{camera display name}: " before each
camera's first frame and "frame {k} " before each frame, cameras in ascending model index
(shared/reference/alpamayo_1_5.md 5.2, 5.4). Images go through the Qwen2-VL/Qwen3-VL image
preprocessing; each <|image_pad|> is expanded to that image's token count and the history
placeholders are replaced by the history tokens.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoImageProcessor, AutoTokenizer, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from alpamayo_ros.core.cameras import (
    ALPAMAYO1_CAMERAS,
    CameraLayoutError,
    check_camera_layout,
    display_name,
    model_camera,
    prompt_order,
)
from alpamayo_ros.core.ego_history import EgoHistory
from alpamayo_ros.core.encoded_image import CameraFrame
from alpamayo_ros.model.checkpoint_io import CheckpointError
from alpamayo_ros.model.config import USED_SPECIAL_TOKENS, AlpamayoConfig, special_token
from alpamayo_ros.model.frame_decoding import FrameDecoder
from alpamayo_ros.model.image_preprocessing import ImagePreprocessor
from alpamayo_ros.planning.requests import PlanRequest, QuestionRequest

SYSTEM_PROMPT = "You are a driving assistant that generates safe and accurate actions."
INSTRUCTION = (
    "output the chain-of-thought reasoning of the driving process, then output the future "
    "trajectory."
)
IMAGE_PLACEHOLDER = "<|vision_start|><|image_pad|><|vision_end|>"

# Qwen3-VL image preprocessing as released (about 320 x 576 pixels, ~180 tokens per image).
RELEASED_MIN_PIXELS = 163840
RELEASED_MAX_PIXELS = 196608
QWEN3_VL_IMAGE_PROCESSOR = {
    "image_processor_type": "Qwen2VLImageProcessor",
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "merge_size": 2,
    "patch_size": 16,
    "temporal_patch_size": 2,
    "resample": 3,
    "rescale_factor": 1 / 255,
}


def image_section(num_images: int, camera_indices: list[int] | None = None) -> str:
    """The images of the user turn: bare (Alpamayo 1), or (camera_indices, one per camera
    in prompt order, the images split evenly between them) each camera introduced by
    "{display name}: " and each of its frames by "frame {k} " (Alpamayo 1.5)."""
    if camera_indices is None:
        return IMAGE_PLACEHOLDER * num_images
    per_camera, rest = divmod(num_images, len(camera_indices))
    if rest or not per_camera:
        raise ValueError(f"{num_images} images do not split over {len(camera_indices)} cameras")
    return "".join(
        f"{display_name(index)}: "
        + "".join(f"frame {k} {IMAGE_PLACEHOLDER}" for k in range(per_camera))
        for index in camera_indices
    )


def build_prompt(
    num_images: int,
    num_history_tokens: int,
    camera_indices: list[int] | None = None,
    navigation: str | None = None,
) -> str:
    """The whole driving prompt before image expansion (the model continues after it).

    camera_indices: label the images (Alpamayo 1.5; see image_section); navigation: the
    route text between <|route_start|> and <|route_end|> after the history (1.5)."""
    history = (
        special_token("traj_history_start")
        + special_token("traj_history") * num_history_tokens
        + special_token("traj_history_end")
    )
    route = ""
    if navigation is not None:
        route = special_token("route_start") + navigation + special_token("route_end")
    images = image_section(num_images, camera_indices)
    return (
        f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n"
        f"<|im_start|>user\n{images}{history}{route}{INSTRUCTION}<|im_end|>\n"
        f"<|im_start|>assistant\n{special_token('cot_start')}"
    )


def build_question_prompt(
    num_images: int, question: str, camera_indices: list[int] | None = None
) -> str:
    """Alpamayo 1.5's question prompt: the images, the question between
    <|question_start|> and <|question_end|> (no history, no instruction), and the
    assistant turn opened with <|answer_start|>."""
    images = image_section(num_images, camera_indices)
    q = special_token("question_start") + question + special_token("question_end")
    return (
        f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n"
        f"<|im_start|>user\n{images}{q}<|im_end|>\n"
        f"<|im_start|>assistant\n{special_token('answer_start')}"
    )


def check_text(field: str, text: str) -> str:
    """User text placed in a prompt (navigation, a question): non-empty, and without the
    model's control markup, which the tokenizer would read as special tokens."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{field} must be non-empty text, got {text!r}")
    if "<|" in text or "|>" in text:
        raise ValueError(f"{field} must not contain special-token markup '<|' or '|>': {text!r}")
    return text


class AlpamayoProcessor:
    """Tokenizer + image processor + the trajectory-token layout of one checkpoint."""

    def __init__(
        self, tokenizer: PreTrainedTokenizerBase, image_processor: Any, config: AlpamayoConfig
    ) -> None:
        self.tokenizer = tokenizer
        self.image_processor = image_processor  # its settings, and what save_pretrained writes
        self.images = ImagePreprocessor.from_image_processor(image_processor)
        model_vision = config.vlm_config.vision_config
        for ours, theirs in (("patch_size", "patch_size"), ("merge_size", "spatial_merge_size"),
                             ("temporal_patch_size", "temporal_patch_size")):  # fmt: skip
            if getattr(self.images, ours) != getattr(model_vision, theirs):
                raise ValueError(
                    f"image processor setting {ours} = {getattr(self.images, ours)} differs "
                    f"from the model's vision_config.{theirs} = {getattr(model_vision, theirs)}"
                )
        self.decoder = FrameDecoder()  # JPEG frames decoded on the model's device where it can
        self.config = config
        self.traj_token_start = token_id(tokenizer, "<i0>")
        last = token_id(tokenizer, f"<i{config.traj_vocab_size - 1}>")
        if last != self.traj_token_start + config.traj_vocab_size - 1:
            raise ValueError(
                f"tokenizer's trajectory tokens are not contiguous: <i0> = "
                f"{self.traj_token_start}, <i{config.traj_vocab_size - 1}> = {last}"
            )
        recorded = config.traj_token_start_idx
        if recorded is not None and recorded != self.traj_token_start:
            raise ValueError(
                f"config traj_token_start_idx = {recorded} but the tokenizer has <i0> = "
                f"{self.traj_token_start}"
            )
        self.special_ids = {n: token_id(tokenizer, special_token(n)) for n in USED_SPECIAL_TOKENS}
        unk = tokenizer.unk_token_id
        missing = [n for n, i in self.special_ids.items() if unk is not None and i == unk]
        if missing:
            raise ValueError(f"tokenizer lacks the special tokens {missing}")
        self.image_pad_id = token_id(tokenizer, "<|image_pad|>")
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        # Tokens that only the processor may place: a causal chain holding one would be
        # read as an image slot when it is teacher-forced (the trajectory lane).
        vision = ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")
        known = [tokenizer.convert_tokens_to_ids(t) for t in vision]
        self.vision_token_ids = tuple(
            i for i in known if isinstance(i, int) and i >= 0 and i != unk
        )

    # -- loading --------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str | Path, config: AlpamayoConfig) -> AlpamayoProcessor:
        """Tokenizer files and, when present, preprocessor_config.json from the checkpoint
        folder; otherwise the released Qwen3-VL image settings (the release does not ship
        them: its code fetches them from a hub, which this package never does)."""
        path = Path(path)
        # The Auto* loaders peek at config.json and warn that `alpamayo_r1` is not theirs.
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        if not (path / "tokenizer.json").is_file():  # transformers would say it needs
            # sentencepiece to convert a slow tokenizer, in four lines
            raise CheckpointError(
                f"no tokenizer.json in checkpoint folder {path} (the released checkpoints "
                "ship it beside config.json; the tokenizer is read from it)"
            )
        try:
            tokenizer = _load(
                path, "its tokenizer (tokenizer.json, tokenizer_config.json)",
                lambda: AutoTokenizer.from_pretrained(str(path), local_files_only=True),
            )  # fmt: skip
            if (path / "preprocessor_config.json").is_file():
                _image_processor_type(path)
                image_processor = _load(
                    path, "preprocessor_config.json",
                    lambda: AutoImageProcessor.from_pretrained(str(path), local_files_only=True),
                )  # fmt: skip
            else:
                image_processor = default_image_processor(config.min_pixels, config.max_pixels)
        finally:
            hf_logging.set_verbosity(verbosity)
        return cls(tokenizer, image_processor, config)

    def save_pretrained(self, path: str | Path) -> None:
        self.tokenizer.save_pretrained(str(path))
        self.image_processor.save_pretrained(str(path))

    # -- ids ------------------------------------------------------------------------------
    @property
    def history_token_start(self) -> int:
        """Vocabulary id of history-token level 0."""
        return self.traj_token_start + self.config.history_token_offset

    def history_token_ids(self, ego: EgoHistory) -> np.ndarray:
        """(3N,) vocabulary ids of the ego history's delta tokens."""
        ids = self.config.history_tokenizer.encode(ego.xyz)
        if ids.shape[-1] != self.config.tokens_per_history_traj:
            raise ValueError(
                f"ego history gives {ids.shape[-1]} tokens, the model expects "
                f"{self.config.tokens_per_history_traj} (history of {len(ego.xyz)} poses)"
            )
        return ids + self.history_token_start

    # -- inputs ---------------------------------------------------------------------------
    def target_ids(self, reasoning: str, trajectory_tokens: np.ndarray | None = None) -> list[int]:
        """What the model should write after the prompt (which ends with <|cot_start|>):
        the reasoning, <|cot_end|>, <|traj_future_start|>, then on the discrete path the
        trajectory tokens (local ids (2T,) of the config's future tokenizer) and
        <|traj_future_end|>, and <|im_end|>."""
        ids = list(self.tokenizer(reasoning, add_special_tokens=False)["input_ids"])
        ids += [self.special_ids["cot_end"], self.special_ids["traj_future_start"]]
        if trajectory_tokens is not None:
            ids += (np.asarray(trajectory_tokens) + self.traj_token_start).tolist()
            ids.append(self.special_ids["traj_future_end"])
        ids.append(token_id(self.tokenizer, "<|im_end|>"))
        return ids

    def layout(
        self, images: tuple[CameraFrame, ...], cameras: tuple[str, ...]
    ) -> tuple[list[CameraFrame], list[int] | None]:
        """A request's images in prompt order (cameras ascending by model index) and, for
        checkpoints whose prompts label cameras, the model index of each camera. Refuses
        (CameraLayoutError naming the camera) a layout the checkpoint cannot read."""
        cams = tuple(cameras) or ALPAMAYO1_CAMERAS
        per_camera, rest = divmod(len(images), len(cams))
        if rest or not per_camera:
            raise CameraLayoutError(f"{len(images)} images do not split over cameras {cams}")
        check_camera_layout(cams, self.config.family, per_camera)
        groups = [images[i * per_camera : (i + 1) * per_camera] for i in range(len(cams))]
        order = prompt_order(cams)
        ordered = [img for i in order for img in groups[i]]
        labels = [model_camera(cams[i]).index for i in order]
        return ordered, labels if self.config.labels_cameras else None

    def _expand(
        self,
        prompts: list[str],
        images: list[list[CameraFrame]],
        vision: dict[str, torch.Tensor] | None = None,
        device: torch.device | str = "cpu",
    ) -> tuple[list[np.ndarray], dict[str, torch.Tensor]]:
        """Tokenise each prompt and expand its <|image_pad|> placeholders to its images'
        token counts; returns the id arrays and the vision inputs of all images (`vision`:
        those already computed for the same images, reused; else preprocessed on
        `device`)."""
        if vision is None:
            frames = [img for group in images for img in group]
            vision = self.images(frames, device=device, decoder=self.decoder)
        merge = self.images.merge_size
        tokens_per_image = (vision["image_grid_thw"].prod(dim=-1) // (merge * merge)).tolist()
        sequences, k = [], 0
        for prompt, group in zip(prompts, images, strict=True):
            ids = np.asarray(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])
            pads = np.flatnonzero(ids == self.image_pad_id)
            if len(pads) != len(group):
                raise RuntimeError(
                    f"prompt has {len(pads)} image placeholders for {len(group)} images"
                )
            pieces, start = [], 0
            for p in pads:
                pieces += [ids[start:p], np.full(tokens_per_image[k], self.image_pad_id)]
                start, k = int(p) + 1, k + 1
            pieces.append(ids[start:])
            sequences.append(np.concatenate(pieces))
        return sequences, vision

    def question_inputs(
        self, questions: list[QuestionRequest], device: torch.device | str = "cpu"
    ) -> dict[str, torch.Tensor]:
        """Alpamayo 1.5's question prompts -> input_ids, attention_mask, mm_token_type_ids
        (B, L, left-padded), pixel_values, image_grid_thw."""
        if not self.config.labels_cameras:
            raise ValueError(
                f"questions need an Alpamayo 1.5 checkpoint (this one is {self.config.family})"
            )
        layouts = [self.layout(q.images, q.cameras) for q in questions]
        prompts = [
            build_question_prompt(len(images), check_text("question", q.question), labels)
            for q, (images, labels) in zip(questions, layouts, strict=True)
        ]
        sequences, vision = self._expand(prompts, [images for images, _ in layouts], None, device)
        return self._batch(sequences, vision)

    def _batch(
        self, sequences: list[np.ndarray], vision: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Left-padded input_ids, attention_mask, mm_token_type_ids + the vision inputs."""
        length = max(len(seq) for seq in sequences)
        input_ids = torch.full((len(sequences), length), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(sequences), length), dtype=torch.long)
        for b, seq in enumerate(sequences):
            input_ids[b, length - len(seq) :] = torch.from_numpy(seq)
            attention[b, length - len(seq) :] = 1
        return {
            "input_ids": input_ids,
            "attention_mask": attention,
            "mm_token_type_ids": (input_ids == self.image_pad_id).int() * attention.int(),
            **vision,  # pixel_values (or what stands for them) and image_grid_thw
        }

    def __call__(
        self,
        requests: list[PlanRequest],
        continuations: list[list[int]] | None = None,
        vision: dict[str, Any] | None = None,
        device: torch.device | str = "cpu",
    ) -> dict[str, torch.Tensor]:
        """Batch of requests -> input_ids, attention_mask (B, L), mm_token_type_ids (B, L),
        pixel_values (sum of patches, D), image_grid_thw (total images, 3).

        continuations: token ids appended to each prompt (training: target_ids, or a
        rollout's generated ids); then also labels (B, L), -100 outside the continuations,
        and future_start (B,), the index of each continuation's <|traj_future_start|> (-1
        where it has none).
        vision: pixel_values and image_grid_thw an earlier call computed for the same
        requests' images (the unguided prompt of navigation guidance), reused.
        device: where the images are preprocessed (the model's: on a GPU, resize and
        normalisation run there, as torchvision's GPU path; pixel_values stay there).
        Sequences of different lengths are left-padded.
        """
        if continuations is not None and len(continuations) != len(requests):
            raise ValueError(f"{len(continuations)} continuations for {len(requests)} requests")
        if not requests:
            raise ValueError("no requests to process")
        layouts = [self.layout(r.images, r.cameras) for r in requests]
        for r in requests:
            if r.navigation is not None:
                if not self.config.reads_navigation:
                    raise ValueError(
                        f"navigation text {r.navigation!r} given to an {self.config.family} "
                        "checkpoint: only Alpamayo 1.5 checkpoints read navigation"
                    )
                check_text("navigation", r.navigation)
        prompts = [
            build_prompt(len(images), self.config.tokens_per_history_traj, labels, r.navigation)
            for r, (images, labels) in zip(requests, layouts, strict=True)
        ]
        sequences, vision = self._expand(prompts, [images for images, _ in layouts], vision, device)
        history_placeholder = self.special_ids["traj_history"]
        for ids, r in zip(sequences, requests, strict=True):
            slots = np.flatnonzero(ids == history_placeholder)
            ids[slots] = self.history_token_ids(r.ego)
        prompt_lengths = [len(seq) for seq in sequences]
        if continuations is not None:
            for b, cont in enumerate(continuations):
                bad = sorted(set(cont) & set(self.vision_token_ids))
                if bad:
                    raise ValueError(
                        f"continuation {b} holds vision placeholder token ids {bad}: only the "
                        "prompt's images may use them"
                    )
            sequences = [
                np.concatenate([seq, np.asarray(cont, dtype=seq.dtype)])
                for seq, cont in zip(sequences, continuations, strict=True)
            ]

        out = self._batch(sequences, vision)
        input_ids = out["input_ids"]
        length = input_ids.shape[1]
        if continuations is not None:
            labels = torch.full_like(input_ids, -100)
            future_start = torch.full((len(sequences),), -1, dtype=torch.long)
            stop = self.special_ids["traj_future_start"]
            for b, (seq, n_prompt) in enumerate(zip(sequences, prompt_lengths, strict=True)):
                offset = length - len(seq)
                labels[b, offset + n_prompt :] = torch.from_numpy(seq[n_prompt:])
                hits = np.flatnonzero(seq[n_prompt:] == stop)
                if hits.size:
                    future_start[b] = offset + n_prompt + int(hits[0])
            out["labels"] = labels
            out["future_start"] = future_start
        return out


def token_id(tokenizer: PreTrainedTokenizerBase, token: str) -> int:
    """The vocabulary id of one token (ValueError naming it when the tokenizer lacks it)."""
    value = tokenizer.convert_tokens_to_ids(token)
    if not isinstance(value, int) or value < 0:
        raise ValueError(f"tokenizer has no token {token!r}")
    return value


def _image_processor_type(path: Path) -> None:
    """CheckpointError naming the checkpoint, the file, the field and the value when its
    preprocessor_config.json is no JSON object or its image_processor_type is not a class
    name (transformers fails on those with an AttributeError of its own)."""
    what = f"{path}: cannot load preprocessor_config.json"
    try:
        doc = json.loads((path / "preprocessor_config.json").read_text())
    except (OSError, ValueError):
        return  # transformers' loader says what is wrong with the file itself
    if not isinstance(doc, dict):
        raise CheckpointError(f"{what}: not a JSON object of image processor settings")
    kind = doc.get("image_processor_type", "")
    if not isinstance(kind, str):
        raise CheckpointError(f"{what}: image_processor_type must be a class name, got {kind!r}")


def _load(path: Path, what: str, load: Callable[[], Any]) -> Any:
    """load(), its failures as CheckpointError naming the checkpoint and `what` (the Rust
    tokenizer parser raises a bare Exception for a damaged tokenizer.json, json a
    ValueError without the file's name)."""
    try:
        return load()
    except Exception as err:
        raise CheckpointError(f"{path}: cannot load {what}: {type(err).__name__}: {err}") from err


def default_image_processor(min_pixels: int | None, max_pixels: int | None) -> Any:
    """Qwen3-VL's image processor with the given pixel budget, built offline (the
    torchvision backend when torchvision is installed, else the PIL one)."""
    settings: dict[str, Any] = dict(QWEN3_VL_IMAGE_PROCESSOR)
    settings["size"] = {
        "shortest_edge": int(min_pixels or RELEASED_MIN_PIXELS),
        "longest_edge": int(max_pixels or RELEASED_MAX_PIXELS),
    }
    settings.pop("image_processor_type")
    if importlib.util.find_spec("torchvision") is not None:
        from transformers import Qwen2VLImageProcessor

        return Qwen2VLImageProcessor(**settings)
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    return Qwen2VLImageProcessorPil(**settings)


def image_processor_config(min_pixels: int, max_pixels: int) -> str:
    """preprocessor_config.json text for a checkpoint folder."""
    settings = dict(QWEN3_VL_IMAGE_PROCESSOR)
    settings["size"] = {"shortest_edge": min_pixels, "longest_edge": max_pixels}
    return json.dumps(settings, indent=2, sort_keys=True) + "\n"
