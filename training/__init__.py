"""Few-shot learning on top of the shipped backbones: cached features, episodes, heads, adaptation.

Modules (import them directly; nothing heavy is loaded by this package):
    features      every file of a dataset embedded once by the shipped pipeline, cached on disk
    episodes      identity splits (train / validation / test), N-way K-shot episode and pair samplers
    fewshot_eval  EER / TAR at FAR on pairs, N-way K-shot accuracy with 95 % CI, for any scorer
    heads         trained Siamese / prototypical / relation heads: save, load, score
    heads_train   training, validation and calibration of those heads
    scratch_train from-scratch encoders on raw faces / log-mels (classic baselines)
    dispatch      what ``python -m verify train`` and ``evaluate --head/--adapt`` call
    maml, adapt, adapt_train, adapt_eval   per-user adaptation (MAML, FOMAML, Reptile, Meta-SGD, TAML)
"""
