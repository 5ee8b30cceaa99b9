"""A small residual U-Net for image-to-image completion (RISING's network)."""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn import functional as F

Tensor = torch.Tensor


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1),
        nn.ReLU(inplace=True),
    )


class ResUNet(nn.Module):
    """U-Net with two 3x3 convolutions per block, max-pool down, transposed
    convolution up, skip connections, and a residual output
    ``x + U(x)`` (then ReLU when ``positive_output``).

    The paper's network has ``channels=(64, 128, 256, 512)`` (3 levels); the
    CPU-sized default is ``(16, 32, 64)``. Images of any size work: they are
    edge-padded (replicate) to a multiple of ``2^levels`` and cropped back.

    Parameters
    ----------
    channels
        Channels per level, top to bottom (``levels = len(channels) - 1``).
    positive_output
        Apply ReLU to the output (reconstructions are nonnegative).
    seed
        Seeds the weight initialisation (the global RNG is left as it was).

    Examples
    --------
    >>> import torch
    >>> from itersolve.imaging import ResUNet
    >>> net = ResUNet((4, 8), seed=0)
    >>> net(torch.rand(2, 1, 10, 10)).shape
    torch.Size([2, 1, 10, 10])
    """

    def __init__(
        self,
        channels: tuple[int, ...] = (16, 32, 64),
        *,
        positive_output: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if len(channels) < 2 or not all(
            isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in channels
        ):
            raise ValueError(
                f"channels must hold at least two positive ints, got {channels!r}"
            )
        self.channels = tuple(channels)
        self.positive_output = positive_output
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.down = nn.ModuleList(
                [_block(1, channels[0])]
                + [_block(a, b) for a, b in itertools.pairwise(channels)]
            )
            self.up = nn.ModuleList(
                [
                    nn.ConvTranspose2d(b, a, 2, stride=2)
                    for a, b in itertools.pairwise(channels)
                ]
            )
            self.merge = nn.ModuleList([_block(2 * a, a) for a in channels[:-1]])
            self.out = nn.Conv2d(channels[0], 1, 1)

    @property
    def levels(self) -> int:
        return len(self.channels) - 1

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(
                f"x must have shape (batch, 1, height, width), got {tuple(x.shape)}"
            )
        h, w = x.shape[-2:]
        m = 2**self.levels
        pad = (0, (-w) % m, 0, (-h) % m)
        z = F.pad(x, pad, mode="replicate") if any(pad) else x
        skips = []
        for k, block in enumerate(self.down):
            if k:
                z = F.max_pool2d(z, 2)
            z = block(z)
            skips.append(z)
        for k in reversed(range(self.levels)):
            z = self.up[k](z)
            z = self.merge[k](torch.cat([z, skips[k]], dim=1))
        out = x + self.out(z)[..., :h, :w]
        return F.relu(out) if self.positive_output else out

    def extra_repr(self) -> str:
        return f"channels={self.channels}, positive_output={self.positive_output}"
