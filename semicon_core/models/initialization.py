"""Random initialisation shared by the SEMICON modules that have no pretrained weights."""

from torch import nn


def init_conv_bn(module: nn.Module) -> None:
    """Initialise every Conv2d and BatchNorm2d inside ``module`` in place.

    Conv2d weights get Kaiming-normal init (fan_out, ReLU gain) and keep
    PyTorch's default bias init. BatchNorm weights are set to 1 and biases to 0.
    """
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)
