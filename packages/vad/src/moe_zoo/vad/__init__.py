"""GS-MoE: weakly-supervised video anomaly detection with class experts and temporal Gaussian splatting."""
