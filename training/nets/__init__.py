"""Few-shot networks: Siamese pair network, prototypical and relation heads, from-scratch encoders."""
