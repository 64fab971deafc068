"""Solutions of notebook 02's coding exercises (the tests put them into the exercise cells)."""
import torch
from torch import nn


def build_table1(layers, width=1.0, in_channels=4):
    modules = []
    # --- your code below (build_table1)
    c_in = in_channels
    for L in layers:
        c_out = L.channels(width)
        if L.transposed:
            modules.append(nn.ConvTranspose2d(c_in, c_out, L.kernel, stride=L.int_stride, padding=L.padding))
        else:
            modules.append(nn.Conv2d(c_in, c_out, L.kernel, stride=L.int_stride, padding=L.padding,
                                     dilation=L.dilation))
        if L.activation == "bn+relu":
            modules += [nn.BatchNorm2d(c_out), nn.ReLU()]
        else:
            modules.append(nn.Sigmoid())
        c_in = c_out
    # --- your code above
    return nn.Sequential(*modules)


def my_residual_output(logits, x, eps=1e-3):
    # --- your code below (residual_output)
    base = x[:, :3].clamp(eps, 1 - eps)
    return torch.sigmoid(logits + torch.log(base / (1 - base)))
    # --- your code above
