"""The KV caches of the static engine: a transformers StaticCache filled from the prefill's
dynamic cache (fixed shapes and addresses, what CUDA graphs capture), cut back after an
expert pass, and the key a reusable one must match."""

from __future__ import annotations

from typing import Any

from transformers import PreTrainedConfig, StaticCache

STATIC_SLOTS = 256  # a static cache's length is a multiple of this


def crop_cache(cache, length: int) -> None:
    """Cut a transformers cache back to `length` tokens (a static cache: its write position,
    in place, so a compiled step keeps its addresses)."""
    if isinstance(cache, StaticCache):
        layers: list[Any] = list(cache.layers)
        for layer in layers:
            layer.cumulative_length.fill_(length)
        return
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)


def static_copy(
    cache, max_len: int, into: StaticCache | None = None, length: int | None = None
) -> StaticCache:
    """A StaticCache of `max_len` slots holding a filled cache's keys and values (engine
    "static": the decode steps and the expert then run on fixed shapes, which CUDA graphs
    need). into: a StaticCache of the same shapes from an earlier plan, filled in place and
    returned (its tensors keep their addresses, so graphs captured over them replay instead
    of being captured again); slots after the copied tokens keep stale values, which the
    attention mask hides. length: copy only the first `length` tokens (default: all)."""
    if length is None:
        length = cache.get_seq_length()
    if max_len < length:
        raise ValueError(f"static cache of {max_len} slots for {length} cached tokens")
    static = into
    if static is None:
        static = StaticCache(config=_CacheConfig(len(cache.layers)), max_cache_len=max_len)
    layers: list[Any] = list(static.layers)
    for dynamic_layer, layer in zip(cache.layers, layers, strict=True):
        keys, values = dynamic_layer.keys[:, :, :length], dynamic_layer.values[:, :, :length]
        if not layer.is_initialized:
            layer.lazy_initialization(keys, values)
        layer.keys[:, :, :length] = keys
        layer.values[:, :, :length] = values
        layer.cumulative_length.fill_(length)
    return static


def static_key(cache, max_len: int) -> tuple:
    """What a reusable StaticCache must match: slots, and each layer's key shape (batch,
    heads, head size), dtype and device."""
    keys = cache.layers[0].keys
    return (max_len, len(cache.layers), keys.shape[0], *keys.shape[1:2], keys.shape[3],
            keys.dtype, keys.device)  # fmt: skip


class _CacheConfig(PreTrainedConfig):
    """The minimum StaticCache reads from a config: a decoder of full-attention layers."""

    def __init__(self, num_hidden_layers: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_hidden_layers = num_hidden_layers
        self.layer_types = ["full_attention"] * num_hidden_layers
