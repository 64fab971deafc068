"""Solutions of notebook 05's coding exercises (the tests fill them in and run the notebook with
strict checks).  Each region replaces the one of the same name in the notebook."""
# ruff: noqa


def discriminator_step(D, opt_d, x, mask, output, boxes, real_boxes):
    # --- your code below (discriminator_step)
    completed = paste(output.detach(), x, mask)            # C's pixels in the holes, the real ones elsewhere
    fake = D(completed, crop_boxes(completed, boxes))      # logits for (whole image, local patch) pairs
    real = D(x, crop_boxes(x, real_boxes))
    loss = 0.5 * (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                  + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    opt_d.zero_grad()
    loss.backward()
    opt_d.step()
    opt_d.zero_grad()
    return {"d_loss": loss.item(), "d_real": torch.sigmoid(real).mean().item(),
            "d_fake": torch.sigmoid(fake).mean().item()}
    # --- your code above


def completion_step(D, opt_c, x, mask, output, boxes, alpha, known_weight=0.0):
    # --- your code below (joint_step)
    hole = mask.expand_as(output)
    mse = ((output - x) ** 2 * hole).sum() / hole.sum()          # mean over the hole values
    recon = mse
    if known_weight > 0:
        known = 1 - hole
        recon = mse + known_weight * ((output - x) ** 2 * known).sum() / known.sum()
    completed = paste(output, x, mask)
    trainable = [p for p in D.parameters() if p.requires_grad]
    for p in trainable:                                          # gradients flow through D, not into it
        p.requires_grad_(False)
    try:
        logits = D(completed, crop_boxes(completed, boxes))
    finally:
        for p in trainable:
            p.requires_grad_(True)
    g_adv = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    loss = recon + alpha * g_adv
    opt_c.zero_grad()
    loss.backward()
    opt_c.step()
    opt_c.zero_grad()
    return {"mse": mse.item(), "g_adv": g_adv.item()}
    # --- your code above
