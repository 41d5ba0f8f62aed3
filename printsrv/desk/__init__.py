"""The handover desk (*penyerahan*): ready cards arrive at the desk, are handed to their owner or
a family member with a power of attorney, and the desk follows up cards nobody collects."""
