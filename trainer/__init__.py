"""Train feedforward networks and record their information plane (see DESIGN.md).

Importing this package does not import TensorFlow; `trainer.training` does.
"""
