"""DriftMoE: a neural router co-trained with Hoeffding-tree experts on drifting data streams."""
