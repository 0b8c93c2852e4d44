"""Exporting a trained encoder (images -> hash codes) for use outside hashkit: :mod:`.onnx_export`."""
