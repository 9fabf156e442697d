"""aslsr: unsupervised multi-scale GAN super-resolution of ASL MRI with a T1 prior."""

__version__ = "0.1.0"
