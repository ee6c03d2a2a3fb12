"""Neural-network building blocks: convolutions (``conv``), composed layers (``layers``), encoders."""
