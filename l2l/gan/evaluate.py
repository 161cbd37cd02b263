"""Evaluation of an unlearned GAN: quality, forgetting, downstream use (split "all").

  fid                  generated samples vs real test images of the retained classes, in the
                       project classifier's 128-d feature space (l2l.scores.fid)
  is                   Inception Score on the classifier's logits of the samples
  forget_class_share   share of samples the classifier assigns to a forgotten class (class)
  mia_auc              threshold attack on the discriminator's logit: forget images (members)
                       against held-out test images of the same classes (class) or of all
                       classes (item); 0.5 = no membership signal
  nn_distance          mean over forget images of the pixel L2 distance ([0, 1] pixels, 32x32)
                       to the nearest generated sample: larger = the samples stay further away
  downstream_accuracy  a fresh classifier trained on the samples, labelled by the project
                       classifier, scored on the real test images of the retained classes
  epochs               unlearning epochs: samples_seen / retained training images (retrain:
                       the epochs of its training); n = retained training images
  samples_seen         real (or substitute) images the unlearning trained on; generated
                       images are not counted (retrain: epochs x retained images)
"""
from __future__ import annotations

import torch
from l2l import scores
from l2l.classifier import Classifier, accuracy, fit
from l2l.data import sample
from l2l.gan.config import GanTrialConfig
from l2l.gan.data import GanSplits, to_gan, to_unit
from l2l.gan.models import GAN
from contract.metrics import GAN_SPLIT as SPLIT
from l2l.result import MetricValue

CLASSIFIER = "classifier"  # the extractor of fid, is, forget_class_share (`extractor` column)
DOWNSTREAM_LR = 1e-3
DOWNSTREAM_BATCH = 128


@torch.no_grad()
def embed(classifier, x: torch.Tensor, device, batch_size: int):
    """[N, 1, 32, 32] in [0, 1] -> features [N, 128], logits [N, K] (on the CPU)."""
    feats, logits = [], []
    for i in range(0, len(x), batch_size):
        f = classifier.embed(x[i:i + batch_size].to(device))
        feats.append(f.cpu())
        logits.append(classifier.head(f).cpu())
    return torch.cat(feats), torch.cat(logits)


@torch.no_grad()
def d_scores(gan: GAN, x: torch.Tensor, device, batch_size: int) -> torch.Tensor:
    """The discriminator's logits of images in [0, 1], in eval mode: [N]."""
    gan.D.eval()
    return torch.cat([gan.D(to_gan(x[i:i + batch_size]).to(device)).cpu()
                      for i in range(0, len(x), batch_size)])


def downstream_accuracy(samples: torch.Tensor, labels: torch.Tensor, test_x: torch.Tensor,
                        test_y: torch.Tensor, n_classes: int, epochs: int, seed: int,
                        device) -> float:
    """Trains the project's classifier architecture on labelled samples ([0, 1]) and returns
    its accuracy on real test images."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Classifier(n_classes, samples.shape[1]).to(device)
    fit(model, samples, labels, epochs, DOWNSTREAM_BATCH, DOWNSTREAM_LR,
        torch.Generator().manual_seed(seed), device)
    return accuracy(model, test_x, test_y, device, chunk=512)


def evaluate(gan: GAN, classifier, cfg: GanTrialConfig, splits: GanSplits, device,
             epochs: float, samples_seen: int, downstream: bool = True
             ) -> tuple[list[MetricValue], torch.Tensor]:
    """All metrics of one trial (`downstream`: with downstream_accuracy, when
    eval.downstream_epochs > 0), and the generated samples ([N, C, 32, 32] in [0, 1])."""
    e = cfg.eval
    g = torch.Generator().manual_seed(cfg.seed * 7 + 1)  # the same latents for every method
    samples = to_unit(gan.sample(e.samples, g, device, e.batch_size))
    f_fake, logits = embed(classifier, samples, device, e.batch_size)
    f_real, _ = embed(classifier, splits.eval_real.x, device, e.batch_size)
    n = len(samples)
    # samples and real images are drawn independently: the bootstrap resamples each on its own
    out = [MetricValue(SPLIT, "fid", scores.fid(f_real, f_fake), n, CLASSIFIER,
                       scores.bootstrap_se(scores.fid, f_real, f_fake, paired=False,
                                           seed=cfg.seed)),
           MetricValue(SPLIT, "is", scores.inception_score(logits), n, CLASSIFIER,
                       scores.bootstrap_se(scores.inception_score, logits, seed=cfg.seed))]
    if cfg.setting == "class":
        forgotten = scores.in_classes(logits, cfg.forget_classes)
        out.append(MetricValue(SPLIT, "forget_class_share", float(forgotten.double().mean()),
                               n, CLASSIFIER, scores.mean_se(forgotten)))

    members = sample(splits.eval_forget, e.mia_images, cfg.seed * 4 + 1).x
    heldout = splits.heldout.x
    auc = scores.roc_auc(d_scores(gan, members, device, e.batch_size),
                         d_scores(gan, heldout, device, e.batch_size))
    out.append(MetricValue(SPLIT, "mia_auc", auc, len(members) + len(heldout)))
    out.append(MetricValue(SPLIT, "nn_distance", scores.nn_distance(samples, members),
                         len(members)))
    if downstream and e.downstream_epochs > 0:
        acc = downstream_accuracy(samples, logits.argmax(1), splits.eval_real.x,
                                  splits.eval_real.y, cfg.n_classes, e.downstream_epochs,
                                  cfg.seed, device)
        out.append(MetricValue(SPLIT, "downstream_accuracy", acc, len(splits.eval_real)))
    retained = len(splits.retain)
    out.append(MetricValue(SPLIT, "epochs", float(epochs), retained))
    out.append(MetricValue(SPLIT, "samples_seen", float(samples_seen), retained))
    return out, samples
