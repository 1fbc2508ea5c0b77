"""photo3d's own monocular depth network (PyTorch side: training and ONNX export).

A small U-shaped encoder-decoder (about 2 M parameters) that runs at 384x288 in well
under half a second on a 2-core CPU through ONNX Runtime:

* encoder: MobileNetV2-style inverted-residual stages at strides 2..32, with a
  **global context block** (GCNet: attention-pooled global context -> bottleneck
  transform -> added to every position, plus a sigmoid channel recalibration) closing
  the stages at strides 8, 16 and 32;
* decoder: bilinear x2 upsampling, concatenation with the encoder skip, two convs and a
  **spatial attention block** (CBAM spatial gate: channel mean & max -> 7x7 conv ->
  sigmoid -> re-weight every position) at strides 16, 8, 4 and 2;
* three heads at stride 2, upsampled to the input size:
  ``inv_depth`` (1 ch, softplus: positive relative inverse depth, affine invariant),
  ``normals`` (3 ch, unit camera-space normals), ``mask`` (1 ch subject logits).

Input: RGB float in [0, 1], NCHW, H and W multiples of 32; the ImageNet normalisation
happens inside the network, so the exported ONNX takes plain [0, 1] RGB.

Every op is chosen so that OpenCV 4.11's DNN ONNX importer reads the export (checked by
``export.py``): Conv (BatchNorm folded at export), ReLU, Sigmoid, Softplus, Exp, Add,
Sub, Mul, Div, Sqrt, Concat, GlobalAveragePool, GlobalMaxPool, ReduceMean/ReduceMax over
the channel axis, Resize (bilinear, align_corners=False, constant scale 2).
Nothing reshapes, flattens or multiplies matrices: the GC block's spatial softmax
pooling is written as GAP(x * e) / GAP(e) with e = exp(logit - max logit), which equals
sum(x * softmax(logit)) over the positions without a Reshape/MatMul/Softmax.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
OUTPUT_NAMES = ("inv_depth", "normals", "mask")


def conv_bn(cin, cout, k=3, stride=1, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand -> 3x3 depthwise -> 1x1 project (+ identity)."""

    def __init__(self, cin, cout, stride=1, expand=4):
        super().__init__()
        hid = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers = []
        if expand != 1:
            layers.append(conv_bn(cin, hid, 1))
        layers += [conv_bn(hid, hid, 3, stride, groups=hid), conv_bn(hid, cout, 1, act=False)]
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        y = self.body(x)
        return x + y if self.use_res else y


class GlobalContext(nn.Module):
    """GCNet global context block.

    context = sum_j softmax_j(w . x_j) x_j             (attention pooling, per image)
    x <- x * sigmoid(T_s(context)) + T_a(context)       (channel recalibration + add)

    T_a and T_s are 1x1-conv bottlenecks (ratio 1/4, ReLU). The original block uses a
    LayerNorm in the bottleneck; it is left out (1x1 context, OpenCV-friendly ops).
    The softmax pooling is GAP(x * e) / GAP(e), e = exp(a - max a): the H*W factors of
    the two averages cancel, so no reshape is needed and any input size works.
    """

    def __init__(self, c, ratio=0.25):
        super().__init__()
        mid = max(8, int(c * ratio))
        self.attn = nn.Conv2d(c, 1, 1)
        self.add = nn.Sequential(nn.Conv2d(c, mid, 1), nn.ReLU(inplace=True), nn.Conv2d(mid, c, 1))
        self.scale = nn.Sequential(nn.Conv2d(c, mid, 1), nn.ReLU(inplace=True), nn.Conv2d(mid, c, 1))
        nn.init.zeros_(self.add[2].weight)          # starts as identity (x * 0.5 * 2 below)
        nn.init.zeros_(self.add[2].bias)
        nn.init.zeros_(self.scale[2].weight)
        nn.init.zeros_(self.scale[2].bias)

    def forward(self, x):
        a = self.attn(x)                                        # N,1,H,W
        e = torch.exp(a - a.amax((2, 3), keepdim=True))          # stable softmax
        ctx = F.adaptive_avg_pool2d(x * e, 1) / F.adaptive_avg_pool2d(e, 1)   # N,C,1,1
        return x * (2.0 * torch.sigmoid(self.scale(ctx))) + self.add(ctx)


class SpatialAttention(nn.Module):
    """CBAM spatial gate: x * sigmoid(conv7x7([mean_c x, max_c x]))."""

    def __init__(self, k=7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, k, padding=k // 2)
        nn.init.zeros_(self.conv.weight)            # starts as a uniform 0.5 gate (x 2 below)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x):
        s = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
        return x * (2.0 * torch.sigmoid(self.conv(s)))


def up2(x):
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class DecoderBlock(nn.Module):
    def __init__(self, cin, cskip, cout):
        super().__init__()
        self.fuse = conv_bn(cin + cskip, cout, 1)
        self.conv = nn.Sequential(conv_bn(cout, cout, 3), conv_bn(cout, cout, 3))
        self.attn = SpatialAttention()

    def forward(self, x, skip):
        x = self.fuse(torch.cat([up2(x), skip], 1))
        return self.attn(self.conv(x))


class Head(nn.Module):
    def __init__(self, cin, cout, mid=24):
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, mid, 3), nn.Conv2d(mid, cout, 1))

    def forward(self, x):
        return self.body(x)


class DepthNet(nn.Module):
    """U-Net-like multi-task depth / normals / subject network. See the module doc."""

    def __init__(self, width: float = 1.0):
        super().__init__()

        def w(c):
            return max(8, int(round(c * width / 8)) * 8)

        c1, c2, c3, c4, c5 = w(16), w(24), w(48), w(96), w(192)
        self.config = {"width": width}
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        # encoder
        self.stem = nn.Sequential(conv_bn(3, c1, 3, 2), InvertedResidual(c1, c1, 1, expand=1))   # /2
        self.enc2 = nn.Sequential(InvertedResidual(c1, c2, 2), InvertedResidual(c2, c2))        # /4
        self.enc3 = nn.Sequential(InvertedResidual(c2, c3, 2), InvertedResidual(c3, c3),
                                  InvertedResidual(c3, c3), GlobalContext(c3))                   # /8
        self.enc4 = nn.Sequential(InvertedResidual(c3, c4, 2), InvertedResidual(c4, c4),
                                  InvertedResidual(c4, c4), InvertedResidual(c4, c4),
                                  GlobalContext(c4))                                             # /16
        self.enc5 = nn.Sequential(InvertedResidual(c4, c5, 2), InvertedResidual(c5, c5),
                                  InvertedResidual(c5, c5), GlobalContext(c5))        # /32
        # decoder
        d4, d3, d2, d1 = w(128), w(64), w(48), w(32)
        self.bridge = conv_bn(c5, c5, 3)
        self.dec4 = DecoderBlock(c5, c4, d4)
        self.dec3 = DecoderBlock(d4, c3, d3)
        self.dec2 = DecoderBlock(d3, c2, d2)
        self.dec1 = DecoderBlock(d2, c1, d1)
        # heads
        self.head_depth = Head(d1, 1)
        self.head_normals = Head(d1, 3)
        self.head_mask = Head(d1, 1)

    def forward(self, rgb):
        x = (rgb - self.mean) / self.std
        s1 = self.stem(x)
        s2 = self.enc2(s1)
        s3 = self.enc3(s2)
        s4 = self.enc4(s3)
        s5 = self.bridge(self.enc5(s4))
        y = self.dec4(s5, s4)
        y = self.dec3(y, s3)
        y = self.dec2(y, s2)
        y = self.dec1(y, s1)
        inv_depth = F.softplus(up2(self.head_depth(y)))
        n = up2(self.head_normals(y))
        normals = n / torch.sqrt((n * n).sum(1, keepdim=True) + 1e-6)
        mask = up2(self.head_mask(y))
        return inv_depth, normals, mask


def build(config: dict | None = None) -> DepthNet:
    return DepthNet(**(config or {}))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


if __name__ == "__main__":
    m = build()
    print(f"{count_parameters(m) / 1e6:.3f} M parameters")
    with torch.no_grad():
        outs = m(torch.rand(1, 3, 288, 384))
    for name, o in zip(OUTPUT_NAMES, outs):
        print(name, tuple(o.shape))
