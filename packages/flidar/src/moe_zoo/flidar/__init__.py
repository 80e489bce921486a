"""EvidenceMoE: physics-guided experts with evidential Dirichlet critics for fluorescence LiDAR."""
