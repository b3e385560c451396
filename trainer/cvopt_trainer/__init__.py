"""cvopt's training and export worker: a clean-room YOLOv8-architecture detector and classifier in PyTorch.

Driven by the TypeScript side through the worker protocol (see protocol.py and ../../shared/DESIGN.md).
"""

__version__ = "0.1.0"
