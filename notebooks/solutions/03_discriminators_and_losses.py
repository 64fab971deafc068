"""Solutions of notebook 03's coding exercises (the tests put them into the exercise cells)."""
import torch

from glcic_lib import masks


def local_box_by_hand(hole, size=128, image_size=256):
    # --- your code below (local_box)
    top = hole.top + hole.height // 2 - size // 2
    left = hole.left + hole.width // 2 - size // 2
    top = min(max(top, 0), image_size - size)
    left = min(max(left, 0), image_size - size)
    return masks.Box(top, left, size, size)
    # --- your code above


def crop_patches(images, boxes):
    # --- your code below (crop_patches)
    return torch.stack([img[:, b.top:b.top + b.height, b.left:b.left + b.width] for img, b in zip(images, boxes)])
    # --- your code above


def my_masked_mse(output, target, mask):
    # --- your code below (masked_mse)
    mask = mask.expand_as(output)
    return ((output - target) ** 2 * mask).sum() / mask.sum()
    # --- your code above


def my_discriminator_loss(real_logits, fake_logits):
    # --- your code below (discriminator_loss)
    d_real, d_fake = torch.sigmoid(real_logits), torch.sigmoid(fake_logits)
    return -0.5 * (torch.log(d_real).mean() + torch.log(1 - d_fake).mean())
    # --- your code above


def my_generator_loss(fake_logits):
    # --- your code below (generator_loss)
    return -torch.log(torch.sigmoid(fake_logits)).mean()
    # --- your code above
