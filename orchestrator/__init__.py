"""kto: build, boot, stress and judge Linux kernels in QEMU."""

__version__ = "0.1.0"
