"""GAN unlearning (Sun et al., "Generative Adversarial Networks Unlearning"): a DCGAN trained
on Fashion-MNIST or scikit-learn's digits, item and class unlearning with the cascade and its
baselines, and the evaluation protocol. Entry points: `l2l.gan.config.GanTrialConfig` and
`l2l/gan/steps.py` (the family's trial steps, run by l2l/trial.py); docs/gan.md.

The config module imports no torch, so sweep specs validate quickly.
"""
